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
    "SynthesisSession",
    "Synthesizer",
    "Tokenizer",
    "Transcriber",
    "Transcript",
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
    import importlib.util
    from pathlib import Path

    # Beside the compiled module, not __file__: editable installs keep the Python
    # sources in the checkout and the built files in site-packages.
    spec = importlib.util.find_spec("voxtral_native._core")
    if spec is None or spec.origin is None:
        raise NotFoundError("voxtral_native._core is not built: install voxtral-native with pip first")
    path = Path(spec.origin).parent / "lib" / "cmake" / "voxtral"
    if not path.is_dir():
        raise NotFoundError(f"no CMake package at {path}: voxtral-native was not installed from a build")
    return str(path)


def __getattr__(name: str):
    # Native classes load on first access, so `import voxtral_native` works without the
    # compiled module (and never imports torch).
    if name == "Tokenizer":
        return native().Tokenizer
    if name in ("Transcriber", "Transcript", "Session", "Word", "Piece"):
        from voxtral_native import transcriber

        return getattr(transcriber, name)
    if name in ("Synthesizer", "SynthesisSession"):
        from voxtral_native import synthesizer

        return getattr(synthesizer, name)
    raise AttributeError(f"module 'voxtral_native' has no attribute {name!r}")
