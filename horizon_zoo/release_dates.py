"""Release dates of agents: read METR's ``release_dates.yaml`` (or a CSV) and join them to runs.

Real files name agents loosely: METR's own table calls the ``davinci-002`` runs
"davinci-002 (GPT-3)", and the cyber-horizons table is keyed by the runs' ``model`` id rather than
their ``alias``. :func:`match_release_dates` tries, in order, the alias, the runs' ``model``
column, and the key without a trailing parenthetical, and says which agents needed the looser
matches. Agents left without a date are an error unless the caller asks to skip them.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from horizon_zoo.data import RunData
from horizon_zoo.errors import DataError

_PARENTHETICAL = re.compile(r"\s*\([^()]*\)\s*$")


def read_release_dates(path: str | Path) -> dict[str, dt.date]:
    """Read ``{agent name: release date}`` from a YAML or CSV file.

    YAML: METR's format (a top-level ``date:`` mapping) or a flat mapping of name to date.
    CSV: a name column (``agent``, ``alias`` or ``model``) and a ``release_date`` or ``date``
    column. Dates are ISO ``YYYY-MM-DD``.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: release-dates file not found.")
    if path.suffix.lower() == ".csv":
        raw = _read_csv_dates(path)
    else:
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise DataError(f"{path}: not valid YAML ({exc}).") from None
        if isinstance(loaded, dict) and isinstance(loaded.get("date"), dict):
            loaded = loaded["date"]
        if not isinstance(loaded, dict) or not loaded:
            raise DataError(f"{path}: expected a mapping of agent name to release date (METR's "
                            "release_dates.yaml has them under a top-level 'date:' key).")
        raw = loaded
    dates: dict[str, dt.date] = {}
    bad = []
    for name, value in raw.items():
        parsed = _as_date(value)
        if parsed is None:
            bad.append(f"{name!s}: {value!r}")
        else:
            dates[str(name).strip()] = parsed
    if bad:
        raise DataError(f"{path}: {len(bad)} release date(s) are not YYYY-MM-DD dates: "
                        + "; ".join(bad[:5]) + (" ..." if len(bad) > 5 else ""))
    return dates


def _read_csv_dates(path: Path) -> dict[str, object]:
    frame = pd.read_csv(path, dtype=str)
    name_col = next((c for c in ("agent", "alias", "model") if c in frame.columns), None)
    date_col = next((c for c in ("release_date", "date") if c in frame.columns), None)
    if name_col is None or date_col is None:
        raise DataError(f"{path}: a release-dates CSV needs a name column (agent, alias or model) and a "
                        f"date column (release_date or date); it has {', '.join(frame.columns)}.")
    return dict(zip(frame[name_col], frame[date_col], strict=False))


def _as_date(value: object) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        return None


def match_release_dates(
    data: RunData, dates: Mapping[str, dt.date], *, skip_missing: bool = False
) -> tuple[dict[str, dt.date], list[str]]:
    """Release date of every agent in ``data``, and notes on looser matches and skipped agents.

    Raises :class:`DataError` naming the agents without a date (with the closest names in the
    file) unless ``skip_missing``, in which case they are left out and named in the notes.
    """
    by_key = {k.casefold(): v for k, v in dates.items()}
    stripped: dict[str, list[str]] = {}
    for key in dates:
        stripped.setdefault(_PARENTHETICAL.sub("", key).casefold(), []).append(key)
    model_ids: dict[str, list[str]] = {}
    if "model" in data.runs.columns:
        pairs = data.runs[["agent", "model"]].dropna().drop_duplicates()
        for agent, model in pairs.itertuples(index=False):
            model_ids.setdefault(str(agent), []).append(str(model))
    matched: dict[str, dt.date] = {}
    notes: list[str] = []
    missing: list[str] = []
    used: set[str] = set()  # keys (casefolded) that dated some agent: not offered as hints
    for agent in data.agents:
        if agent.casefold() in by_key:
            matched[agent] = by_key[agent.casefold()]
            used.add(agent.casefold())
            continue
        via_model = sorted({by_key[m.casefold()] for m in model_ids.get(agent, []) if m.casefold() in by_key})
        if len(via_model) == 1:
            matched[agent] = via_model[0]
            used.update(m.casefold() for m in model_ids[agent])
            notes.append(f"release date of '{agent}' taken from its model id "
                         f"'{model_ids[agent][0]}'")
            continue
        loose = stripped.get(agent.casefold(), [])
        if len(loose) == 1:
            matched[agent] = dates[loose[0]]
            used.add(loose[0].casefold())
            notes.append(f"release date of '{agent}' taken from '{loose[0]}'")
            continue
        missing.append(agent)
    if missing:
        hints = []
        for agent in missing:
            unused = [k for k in dates if k.casefold() not in used]
            close = difflib.get_close_matches(agent, unused, n=2, cutoff=0.5)
            hints.append(f"'{agent}'" + (f" (closest: {', '.join(repr(c) for c in close)})" if close else ""))
        message = (f"no release date for {len(missing)} of {len(data.agents)} agents: {'; '.join(hints)}. "
                   "Add them to the release-dates file (keyed by alias or model id)")
        if not skip_missing:
            raise DataError(message + ", or pass --skip-undated to leave them out of the trend.")
        notes.append(message + "; they are left out of the trend.")
    return matched, notes


def decimal_year(date: dt.date) -> float:
    """``2024-07-02`` -> 2024.5: the year plus the elapsed fraction of it."""
    start = dt.date(date.year, 1, 1)
    length = (dt.date(date.year + 1, 1, 1) - start).days
    return date.year + (date - start).days / length


def from_decimal_year(year: float) -> dt.date:
    """Inverse of :func:`decimal_year` to the nearest day (for forecast tables)."""
    if not np.isfinite(year):
        raise ValueError("not a finite year")
    whole = int(np.floor(year))
    start = dt.date(whole, 1, 1)
    length = (dt.date(whole + 1, 1, 1) - start).days
    return start + dt.timedelta(days=int(round((year - whole) * length)))
