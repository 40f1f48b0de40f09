"""voxtral-native: Mistral's Voxtral speech models on your own hardware.

Importing this package never imports torch; the export side (``voxtral_native.export``,
the ``[export]`` extra) is the only part that needs it.
"""

from voxtral_native.errors import (
    BackendError,
    InvalidArgumentError,
    InvalidModelError,
    NotFoundError,
    OutOfRangeError,
    StateError,
    UnsupportedVersionError,
    VoxtralError,
    VoxtralIOError,
)

__version__ = "0.1.0"

__all__ = [
    "BackendError",
    "InvalidArgumentError",
    "InvalidModelError",
    "NotFoundError",
    "OutOfRangeError",
    "StateError",
    "UnsupportedVersionError",
    "VoxtralError",
    "VoxtralIOError",
    "__version__",
    "cmake_dir",
    "native",
]


def native():
    """The compiled module ``voxtral_native._core``, with a clear error if it cannot load."""
    try:
        from voxtral_native import _core
    except ImportError as e:  # the runtime libraries of the chosen backend are missing
        raise ImportError(
            f"voxtral_native's native core failed to load ({e}). The xnnpack build needs the "
            "ExecuTorch runtime: pip install 'voxtral-native[xnnpack]'"
        ) from e
    return _core


def cmake_dir() -> str:
    """Directory of the installed CMake package (for ``find_package(voxtral)``)."""
    from pathlib import Path

    path = Path(__file__).parent / "lib" / "cmake" / "voxtral"
    if not path.is_dir():
        raise NotFoundError(f"no CMake package at {path}: voxtral-native was not installed from a build")
    return str(path)
