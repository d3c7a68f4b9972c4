"""horizon-zoo: competing Stan models of how AI agents' success falls with task length.

The operations are plain functions: ``horizon_zoo.load``, ``.fit``, ``.compare``, ``.check`` and
``horizon_zoo.api.horizons`` (``horizon_zoo.horizons`` is the module that reads horizons off
curves), returning pandas and ArviZ objects.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_API = ("load", "fit", "compare", "check", "select_models")


def __getattr__(name: str) -> Any:
    # Imported on first use: `import horizon_zoo` (and the CLI's --help) stays fast.
    if name in _API or name == "api":
        import importlib

        api = importlib.import_module("horizon_zoo.api")
        return api if name == "api" else getattr(api, name)
    raise AttributeError(f"module 'horizon_zoo' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
