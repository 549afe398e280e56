"""The errors every layer raises, so that a lower module never imports a higher one
to raise its error, and a program or command can tell bad input from a crash."""

from __future__ import annotations


class StopRequested(Exception):
    """Raised inside a blocking loop when the program was asked to stop."""


class FatalError(RuntimeError):
    """An error a restart from the last checkpoint would only repeat (non-finite
    training, a damaged experiment file): the program reports it and the whole run
    stops."""


class ParamsError(ValueError):
    """A params file or a hyperparameter is unusable; the message says the fix."""


class CheckError(ValueError):
    """What the user brings would fail later; the message says the fix."""
