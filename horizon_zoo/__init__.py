"""horizon-zoo: competing Stan models of how AI agents' success falls with task length.

The operations are plain functions in :mod:`horizon_zoo.api` (``load``, ``fit``, ``compare``,
``check``, ``horizons``), returning pandas and ArviZ objects; ``horizon_zoo.api`` is available
as an attribute of the package. They are not re-exported at the top level because ``fit``,
``compare`` and ``horizons`` are also the names of modules of this package.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_API = ("load", "check", "select_models")


def __getattr__(name: str) -> Any:
    # Imported on first use: `import horizon_zoo` (and the CLI's --help) stays fast.
    if name in _API or name == "api":
        import importlib

        api = importlib.import_module("horizon_zoo.api")
        return api if name == "api" else getattr(api, name)
    raise AttributeError(f"module 'horizon_zoo' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
