"""Files processes share: atomic JSON writes, reads that tolerate a torn file, typed
JSON records, and the free space left on an experiment's disk."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

R = TypeVar("R", bound="JsonRecord")

# A disk with less free space than this is full: the writes of a run fail on it.
DISK_FULL_BYTES = 1 << 20


def write_json_atomic(path: Path, data: Any, durable: bool = False) -> None:
    """Write JSON to a temporary name, then rename: readers never see half a file.
    `durable`: also flush it to disk (file and directory) before returning, for files
    whose loss after a power cut would damage the experiment (settings, the replay
    format, completion, the memory's row size)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "w") as fh:
            fh.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)  # a full disk: leave nothing half-written behind
        raise
    if durable:
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def read_json(path: Path) -> Any:
    """The JSON in a file."""
    return json.loads(Path(path).read_text())


def read_json_or_none(path: Path, log=None) -> Any:
    """A JSON file's content; None (and a warning) if it is missing, empty or torn, as a
    status file can be after a power cut: the caller starts afresh."""
    try:
        return read_json(path)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        if log is not None:
            log.warning("%s is unreadable (%s); starting without it", path, exc)
        return None


class JsonRecord:
    """A typed record that processes exchange through one JSON file.

    Subclasses are frozen dataclasses: a field's name is its key in the file, so the
    keys are spelled once, in the record's class, and nowhere else. Keys a reader
    does not know are ignored (a newer writer), missing ones with a default take it
    (an older writer); a missing required key or a file that is not a JSON object is a
    ValueError naming the file.
    """

    @classmethod
    def from_json(cls: type[R], data: Any) -> R:
        """The record of a parsed JSON object."""
        if not isinstance(data, Mapping):
            raise ValueError(f"not a JSON object but {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        try:
            return cls(**{k: v for k, v in data.items() if k in names})
        except TypeError as exc:  # a required key is missing
            raise ValueError(f"not a {cls.__name__} record ({exc})") from None

    def to_json(self) -> dict:
        """The record as a JSON object."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def write(self, path: Path, durable: bool = False) -> None:
        """Write the record atomically (see `write_json_atomic`)."""
        write_json_atomic(path, self.to_json(), durable)

    @classmethod
    def read(cls: type[R], path: Path) -> R:
        """The record in a file: OSError if it cannot be read, ValueError if it is not
        this record."""
        try:
            return cls.from_json(read_json(path))
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from exc

    @classmethod
    def read_or_none(cls: type[R], path: Path, log=None) -> R | None:
        """The record in a file; None (and a warning) if it is missing or damaged."""
        data = read_json_or_none(path, log)
        if data is None:
            return None
        try:
            return cls.from_json(data)
        except ValueError as exc:
            if log is not None:
                log.warning("%s is unreadable (%s); starting without it", path, exc)
            return None


def _nearest_existing(path: Path) -> Path:
    """`path`, or its nearest parent that exists (an experiment not created yet)."""
    path = Path(path).resolve()
    while not path.exists():
        path = path.parent
    return path


def mount_point(path: Path) -> Path:
    """The mount point of the file system holding `path` (or its nearest existing parent)."""
    path = _nearest_existing(path)
    while not os.path.ismount(path):
        path = path.parent
    return path


def free_bytes(path: Path) -> int:
    """Bytes an unprivileged writer can still use on the file system holding `path`."""
    return shutil.disk_usage(_nearest_existing(path)).free


def disk_full(path: Path) -> str | None:
    """A line saying the disk holding `path` is full, or None."""
    free = free_bytes(path)
    if free >= DISK_FULL_BYTES:
        return None
    return (f"the disk holding {path} is full ({free // 1024} KiB free on "
            f"{mount_point(path)}): free space there, then rerun the same command to resume")
