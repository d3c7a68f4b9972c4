"""Run directories and atomic file writes.

Every command writes into ``runs/<timestamp>-<name>/``; files appear only once complete, so an
interrupted run never leaves a half-written table or fit behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pandas as pd

DEFAULT_RUNS_ROOT = Path("runs")


def new_run_dir(name: str, root: str | Path | None = None, out: str | Path | None = None) -> Path:
    """Create and return ``<root>/<YYYYmmdd-HHMMSS>-<name>/`` (or exactly ``out`` when given)."""
    if out is not None:
        path = Path(out)
    else:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        base = Path(root) if root else DEFAULT_RUNS_ROOT
        path = base / f"{stamp}-{name}"
        suffix = 1
        while path.exists():  # two runs in the same second
            suffix += 1
            path = base / f"{stamp}-{name}-{suffix}"
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` only on success."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates the file private (0600); results are meant to be shared like any file.
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def remove_partial_files(directory: Path) -> None:
    """Delete what :func:`atomic_path` leaves in ``directory`` when the writing process is killed
    (its ``finally`` never runs). Only call it once every writer into ``directory`` has stopped."""
    for tmp in directory.glob(".*.part"):
        tmp.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(target: Path, text: str) -> None:
    """Write ``text`` to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def read_cached_record(path: Path, what: str) -> dict | None:
    """A cached JSON record (a CV fold, an SBC simulation, ...), or None when there is none or it
    cannot be read (a truncated write, a manual edit): then one warning line, and the caller
    recomputes it instead of failing with a traceback."""
    import json
    import logging

    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        if not isinstance(record, dict):
            raise ValueError("not a JSON object")
        return record
    except (OSError, ValueError) as exc:
        logging.getLogger("horizon_zoo").warning("%s cache entry %s cannot be read (%s); computing it again",
                                                 what, path, exc)
        return None


def write_table(frame: pd.DataFrame, directory: Path, stem: str, *, index: bool = False) -> None:
    """Write a table as ``<stem>.csv`` and ``<stem>.md`` side by side."""
    with atomic_path(directory / f"{stem}.csv") as tmp:
        frame.to_csv(tmp, index=index)
    atomic_write_text(directory / f"{stem}.md", markdown_table(frame, index=index))


def markdown_table(frame: pd.DataFrame, *, index: bool = False) -> str:
    """A GitHub-flavoured Markdown table (no optional dependency on tabulate)."""
    shown = frame.reset_index() if index else frame
    header = "| " + " | ".join(_cell(str(c)) for c in shown.columns) + " |"
    rule = "|" + "|".join("---" for _ in shown.columns) + "|"
    rows = ["| " + " | ".join(_cell(v) for v in row) + " |" for row in shown.itertuples(index=False)]
    return "\n".join([header, rule, *rows]) + "\n"


def format_value(value: object) -> str:
    """How a table cell reads in Markdown and HTML alike: floats to 4 significant digits, NaN (a
    missing value) as an empty cell."""
    if isinstance(value, float):
        return "" if value != value else f"{value:.4g}"
    return str(value)


def _cell(value: object) -> str:
    return format_value(value).replace("|", "\\|")
