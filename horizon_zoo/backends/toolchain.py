"""Where PyStan's ``httpstan`` wheel keeps the Stan toolchain: stanc (the registry's
``stanc --info``) and the headers and prebuilt libraries the offline CmdStan build reuses."""

from __future__ import annotations

from pathlib import Path

from horizon_zoo.errors import BackendError, ModelError


def httpstan_dir() -> Path:
    """The installed httpstan package (its ``include/``, ``lib/`` and ``stanc``)."""
    try:
        import httpstan
    except ImportError:
        raise BackendError("this needs PyStan's httpstan package, which ships the Stan toolchain: "
                           "pip install pystan") from None
    return Path(httpstan.__file__).resolve().parent


def stanc_path() -> Path:
    """The Stan compiler shipped with httpstan (always installed), used for ``--info``."""
    path = httpstan_dir() / "stanc"
    if not path.exists():
        raise ModelError(f"stanc not found at {path}; reinstall httpstan.")
    return path
