"""Every cache horizon-zoo keeps on disk: where it lives, how much it holds, and clearing it.

``horizon-zoo cache info`` and ``horizon-zoo cache clear [--older-than DAYS] [--only NAMES]``.
All of them are safe to clear: a compiled program is rebuilt, a fold or simulation refitted,
the next time it is needed.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Cache:
    """One cache: its name, what it holds, its folder, and which of the folder's entries it owns."""

    name: str
    holds: str
    path: Path
    pattern: str = "*"  # entries of ``path`` that belong to this cache


def caches() -> list[Cache]:
    """The caches of this environment, in the order ``cache info`` lists them."""
    from horizon_zoo.backends import cache_dir
    from horizon_zoo.backends.pystan import pystan_models_directory
    from horizon_zoo.check_calibration import default_cache_dir as calibration_dir
    from horizon_zoo.cv import default_cache_dir as cv_dir
    from horizon_zoo.sbc import default_cache_dir as sbc_dir

    found = []
    models = pystan_models_directory()
    if models is not None:
        found.append(Cache("pystan-models", "PyStan's compiled programs (httpstan), one per program and "
                           "environment; httpstan's saved fits inside each", models))
    found += [
        Cache("cmdstan-models", "CmdStan executables, per program, threading and CmdStan", cache_dir() / "cmdstan"),
        Cache("cv-folds", "grouped-CV folds (elpds and held-out predictive draws)", cv_dir()),
        Cache("sbc", "simulation-based calibration simulations (ranks)", sbc_dir()),
        Cache("check-calibration", "the checks' calibration study: its simulations' folds and fits",
              calibration_dir()),
    ]
    return found


def _entries(cache: Cache) -> Iterator[Path]:
    if cache.path.is_dir():
        yield from sorted(cache.path.glob(cache.pattern))


def disk_bytes(path: Path) -> int:
    """Bytes under ``path``, files and folders, counted as ``du -sb`` counts them (apparent sizes,
    each hard-linked file once)."""
    if not path.exists():
        return 0
    seen: set[tuple[int, int]] = set()
    total = 0
    for root, dirs, files in os.walk(path):
        for name in [*dirs, *files, *([""] if root == str(path) else [])]:
            p = os.path.join(root, name) if name else root
            st = os.lstat(p)
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_size
    return total


def info(names: Sequence[str] | None = None) -> list[dict[str, object]]:
    """One row per cache: name, folder, entries, bytes, what it holds."""
    return [{"cache": c.name, "path": str(c.path), "entries": sum(1 for _ in _entries(c)),
             "bytes": disk_bytes(c.path), "holds": c.holds} for c in _selected(names)]


def clear(names: Sequence[str] | None = None, older_than_days: float | None = None) -> dict[str, int]:
    """Delete the entries of the named caches (all by default), or only those not modified for
    ``older_than_days``; return how many entries each cache lost."""
    cutoff = None if older_than_days is None else time.time() - older_than_days * 86400
    removed = {}
    for c in _selected(names):
        n = 0
        for entry in list(_entries(c)):
            if cutoff is not None and _newest_mtime(entry) >= cutoff:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            n += 1
        removed[c.name] = n
    return removed


def _newest_mtime(path: Path) -> float:
    if not path.is_dir():
        return path.lstat().st_mtime
    return max([path.lstat().st_mtime, *(p.lstat().st_mtime for p in path.rglob("*"))])


def _selected(names: Sequence[str] | None) -> list[Cache]:
    from horizon_zoo.errors import HorizonZooError

    every = caches()
    if not names:
        return every
    known = {c.name: c for c in every}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise HorizonZooError(f"unknown cache(s) {', '.join(unknown)}; the caches are {', '.join(known)}.")
    return [known[n] for n in names]
