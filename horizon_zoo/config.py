"""``horizon-zoo.toml``: option defaults for repeatable analyses.

Sections ``[data]``, ``[sampling]`` and ``[output]`` apply to every command that has those
options; a section named after a command (``[compare]``, ``[horizons]``, ...) applies to it
only and wins. Keys are the long option names (``release-dates`` or ``release_dates``); values
are TOML strings, numbers, booleans or lists. Options given on the command line win over the
file. An unknown key is an error that lists the valid ones.
"""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path
from typing import Any

from horizon_zoo.errors import HorizonZooError

DEFAULT_CONFIG = Path("horizon-zoo.toml")
SHARED_SECTIONS = ("data", "sampling", "output")


class ConfigError(HorizonZooError):
    """A config file that cannot be read or names unknown options."""

    exit_code = 2


def read_config(path: Path) -> dict[str, dict[str, Any]]:
    """The file's sections as ``{section: {dest: value}}`` (dashes in keys become underscores)."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc}).") from None
    out = {}
    for section, values in raw.items():
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: '{section}' must be a [section] of options, e.g. [sampling] chains = 4.")
        out[section] = {k.replace("-", "_"): v for k, v in values.items()}
    return out


def apply_config(subparsers: dict[str, argparse.ArgumentParser], command: str, config: dict[str, dict[str, Any]],
                 path: Path) -> None:
    """Set the config's values as defaults of ``command``'s parser, converting them like the CLI would."""
    parser = subparsers[command]
    actions = {a.dest: a for a in parser._actions if a.dest not in ("help",)}
    unknown_sections = set(config) - set(SHARED_SECTIONS) - set(subparsers)
    if unknown_sections:
        raise ConfigError(f"{path}: unknown section(s) {', '.join(sorted(unknown_sections))}; use "
                          f"{', '.join(SHARED_SECTIONS)} or a command name ({', '.join(sorted(subparsers))}).")
    defaults: dict[str, Any] = {}
    for section in (*SHARED_SECTIONS, command):
        for key, value in config.get(section, {}).items():
            if key not in actions:
                if section in SHARED_SECTIONS and any(key in {a.dest for a in p._actions} for p in subparsers.values()):
                    continue  # an option of other commands (e.g. --fits is not on compare)
                valid = ", ".join(sorted(d.replace("_", "-") for d in actions))
                raise ConfigError(f"{path}: [{section}] {key.replace('_', '-')} is not an option of "
                                  f"'{command}'; valid: {valid}.")
            defaults[key] = _convert(actions[key], value, path, section, key)
    parser.set_defaults(**defaults)


def _convert(action: argparse.Action, value: Any, path: Path, section: str, key: str) -> Any:
    kind = action.type
    try:
        if isinstance(value, list):
            value = ",".join(str(v) for v in value)
        if isinstance(value, bool) or kind is None:
            return value
        return kind(str(value)) if not isinstance(value, str) or kind is not str else value
    except (argparse.ArgumentTypeError, ValueError) as exc:
        raise ConfigError(f"{path}: [{section}] {key.replace('_', '-')} = {value!r}: {exc}") from None
