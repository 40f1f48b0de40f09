"""Exceptions raised by voxtral-native.

Every error from the native core arrives as a subclass of :class:`VoxtralError` that
also derives from the matching built-in exception, so callers can catch either
(``except FileNotFoundError`` works for a missing program file).
"""

from __future__ import annotations


class VoxtralError(Exception):
    """Base class of every error voxtral-native raises."""


class InvalidArgumentError(VoxtralError, ValueError):
    """An argument is unusable: bad shape, NaN samples, unknown option value."""


class NotFoundError(VoxtralError, FileNotFoundError):
    """A file, method, key or token that should exist does not."""


class VoxtralIOError(VoxtralError, OSError):
    """Reading or writing a file failed."""


class InvalidModelError(VoxtralError, ValueError):
    """A program, tokenizer or checkpoint file is corrupt or not what was expected."""


class UnsupportedVersionError(InvalidModelError):
    """A file of a format version this build does not know (re-export it)."""


class StateError(VoxtralError, RuntimeError):
    """The call is not valid in the object's current state (e.g. feeding after flush)."""


class OutOfRangeError(VoxtralError, IndexError):
    """An index or token id outside its valid range."""


class BackendError(VoxtralError, RuntimeError):
    """The inference runtime failed in a way that is not the caller's fault."""


# Names of the C++ voxtral::ErrorCode values (voxtral::error_code_name) -> classes.
_BY_CODE = {
    "InvalidArgument": InvalidArgumentError,
    "NotFound": NotFoundError,
    "IoError": VoxtralIOError,
    "InvalidProgram": InvalidModelError,
    "UnsupportedVersion": UnsupportedVersionError,
    "FailedPrecondition": StateError,
    "OutOfRange": OutOfRangeError,
    "Internal": BackendError,
}


def exception_class(code_name: str) -> type[VoxtralError]:
    """The exception class for a native error code name (used by the bindings)."""
    return _BY_CODE.get(code_name, BackendError)
