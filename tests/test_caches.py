"""Caches that outlive their environment: seen, sized, cleared, and rebuilt when they no longer load."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from horizon_zoo.cli import main
from tests.conftest import REPO


@pytest.fixture
def cache_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every cache of this process under tmp_path (httpstan's through XDG_CACHE_HOME)."""
    monkeypatch.setenv("HORIZON_ZOO_CACHE", str(tmp_path / "hz"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    for var in ("HORIZON_ZOO_CV_CACHE", "HORIZON_ZOO_SBC_CACHE", "HORIZON_ZOO_CALIBRATION_CACHE"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def _fill(cache_root: Path) -> dict[str, Path]:
    from horizon_zoo import caches

    folders = {c.name: c.path for c in caches.caches()}
    for name, folder in folders.items():
        entry = folder / f"{name}-entry"
        entry.mkdir(parents=True)
        (entry / "payload.bin").write_bytes(os.urandom(1000 + 37 * len(name)))
        (folder / f"{name}.json").write_text("{}" * len(name))
    return folders


def test_cache_info_sizes_match_du_and_clear_empties_every_cache(cache_root, capsys):
    from horizon_zoo import caches

    folders = _fill(cache_root)
    assert set(folders) == {"pystan-models", "cmdstan-models", "cv-folds", "sbc", "check-calibration"}
    assert all(str(p).startswith(str(cache_root)) for p in folders.values())
    rows = {r["cache"]: r for r in caches.info()}
    for name, folder in folders.items():
        du = int(subprocess.run(["du", "-sb", str(folder)], capture_output=True, text=True, check=True)
                 .stdout.split()[0])
        assert rows[name]["bytes"] == du, name
        assert rows[name]["entries"] == 2
    assert main(["cache", "info"]) == 0
    printed = capsys.readouterr().out
    assert all(name in printed and str(folders[name]) in printed for name in folders)
    assert main(["cache", "clear", "--only", "cv-folds"]) == 0
    assert "cv-folds: removed 2 entries" in capsys.readouterr().out
    assert list(folders["cv-folds"].iterdir()) == [] and len(list(folders["sbc"].iterdir())) == 2
    assert main(["cache", "clear"]) == 0
    assert all(list(folder.iterdir()) == [] for folder in folders.values())


def test_clear_older_than_keeps_recent_entries_and_bad_names_are_refused(cache_root, capsys):
    from horizon_zoo import caches

    folders = _fill(cache_root)
    old = folders["sbc"] / "sbc-entry"
    past = 10 * 86400
    for p in [old, *old.rglob("*")]:
        st = p.stat()
        os.utime(p, (st.st_atime - past, st.st_mtime - past))
    assert caches.clear(["sbc"], older_than_days=5) == {"sbc": 1}
    assert [p.name for p in folders["sbc"].iterdir()] == ["sbc.json"]
    assert main(["cache", "clear", "--only", "nope"]) == 2
    assert "unknown cache(s) nope; the caches are" in capsys.readouterr().err
    # through the CLI: the age is passed on, 0 days is allowed (everything), a negative age is refused
    newer = folders["cv-folds"] / "cv-folds.json"
    st = newer.stat()
    os.utime(newer, (st.st_atime - past, st.st_mtime - past))
    assert main(["cache", "clear", "--only", "cv-folds", "--older-than", "5"]) == 0
    assert capsys.readouterr().out == "cv-folds: removed 1 entry\n"
    assert main(["cache", "clear", "--only", "sbc", "--older-than", "0"]) == 0
    assert capsys.readouterr().out == "sbc: removed 1 entry\n"
    assert main(["cache", "clear", "--older-than", "-1"]) == 2
    assert "--older-than must be 0 or more days, got -1." in capsys.readouterr().err
    assert main(["cache", "info", "--only", "sbc"]) == 0
    info = capsys.readouterr().out
    assert "sbc" in info and "cv-folds" not in info and re.search(r"\b0\.0 MB\b", info)


@pytest.mark.stan
def test_a_cached_pystan_module_that_no_longer_loads_is_rebuilt_once(tmp_path):
    """Issue 34: a compiled module whose file is damaged (or whose environment was deleted) is
    removed and rebuilt with one line saying why; the fit then succeeds."""
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "xdg"), "HORIZON_ZOO_CACHE": str(tmp_path / "hz")}
    command = [sys.executable, "-m", "horizon_zoo.cli", "fit", "--model", "bradley_terry", "--chains", "1",
               "--warmup", "50", "--draws", "50", "--runs-root", str(tmp_path / "runs"), "--backend", "pystan"]
    first = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stderr[-2000:]
    modules = list((tmp_path / "xdg" / "httpstan").glob("*/models/*/*.so"))
    assert len(modules) == 1
    modules[0].write_bytes(b"not an ELF file")
    second = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "is unusable (ImportError:" in second.stderr and "removing it and rebuilding" in second.stderr
    assert "Traceback" not in second.stderr
    assert modules[0].read_bytes()[:4] == b"\x7fELF"
    # a build cut off after writing the module (a client timeout) leaves no stderr.log, and httpstan
    # then failed every later request for it ('unexpected content after document'): rebuilt too
    (modules[0].parent / "stderr.log").unlink()
    third = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert third.returncode == 0, third.stderr[-2000:]
    assert "is unusable" in third.stderr and "removing it and rebuilding" in third.stderr
    assert "Traceback" not in third.stderr and (modules[0].parent / "stderr.log").is_file()
