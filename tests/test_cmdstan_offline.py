"""The offline CmdStan route (issue 29): layout, idempotence, failures, and how --backend auto
finds the result. ``make`` is replaced here; the real build runs in tests/test_cmdstan_real.py."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from horizon_zoo import backends, cmdstan_offline
from horizon_zoo.cli import main
from horizon_zoo.errors import BackendError

CALL_2_36 = """      return_code = stan::services::pathfinder::pathfinder_lbfgs_single<
          false, stan::model::model_base>(
          model, *(init_contexts[0]), random_seed);
"""


def _archive(path: Path, version: str = "2.36.0", command: str = CALL_2_36, top: str | None = None) -> Path:
    top = top or f"cmdstan-{version}"
    files = {f"{top}/makefile": f"help:\nCMDSTAN_VERSION := {version}\n",
             f"{top}/src/cmdstan/command.hpp": command,
             f"{top}/make/program": "# CmdStan's own\n"}
    with tarfile.open(path, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def wheel(tmp_path, monkeypatch):
    """A stand-in for httpstan's package folder: stan and other headers, libraries, stanc."""
    root = tmp_path / "httpstan"
    single = root / "include" / "stan" / "services" / "pathfinder" / "single.hpp"
    single.parent.mkdir(parents=True)
    single.write_text("template <bool ReturnLpSamples = false, bool InMultiPathfinder = false, class Model>\n")
    for name in ("Eigen", "boost", "tbb", "rapidjson"):
        (root / "include" / name).mkdir()
    (root / "lib").mkdir()
    (root / "lib" / "libtbb.so.2").write_bytes(b"")
    (root / "stanc").write_text("#!/bin/sh\n")
    monkeypatch.setattr(cmdstan_offline, "httpstan_dir", lambda: root)
    monkeypatch.setattr(cmdstan_offline, "_httpstan_key", lambda d: "k" + str(abs(hash(str(d))))[:6])
    monkeypatch.setenv("HORIZON_ZOO_CMDSTAN_DIR", str(tmp_path / "cmdstan-offline"))
    monkeypatch.setenv("HORIZON_ZOO_CACHE", str(tmp_path / "cache"))  # the build lock
    return root


@pytest.fixture
def make_calls(monkeypatch):
    calls: list[tuple[Path, list[str]]] = []

    def fake_make(root, arguments, say):
        calls.append((root, arguments))

    monkeypatch.setattr(cmdstan_offline, "_make", fake_make)
    return calls


def test_the_tree_is_laid_out_for_cmdstans_makefile_and_built_once(tmp_path, wheel, make_calls):
    archive = _archive(tmp_path / "cmdstan-2.36.0.tar.gz")
    built = cmdstan_offline.build_offline(archive, jobs=2, say=lambda m: None)
    assert built.name.startswith("cmdstan-2.36.0-") and (built / cmdstan_offline.MARKER).is_file()
    assert make_calls == [(built.with_name(built.name + ".partial"), ["build", "STAN_THREADS=TRUE", "-j2"])]
    # stan/ is a copy (CmdStan writes its precompiled header beside it); the rest are links
    assert (built / "stan/src/stan/services/pathfinder/single.hpp").is_file()
    assert not (built / "stan/src/stan").is_symlink()
    deps = built / "deps" / "include"
    assert sorted(p.name for p in deps.iterdir()) == ["Eigen", "boost", "rapidjson", "tbb"]
    assert all((deps / n).is_symlink() for n in ("Eigen", "tbb"))
    assert sorted(p.name for p in (built / "stan/lib/stan_math/make").iterdir()) == [
        "compiler_flags", "dependencies", "libraries"]
    local = (built / "make" / "local").read_text()
    assert f"HTTPSTAN_LIB := {wheel / 'lib'}" in local and "DEPS_INCLUDE := deps/include" in local
    assert (built / "bin" / "stanc").is_file()
    command = (built / "src/cmdstan/command.hpp").read_text()
    assert "pathfinder_lbfgs_single<false, false, stan::model::model_base>(" in command
    assert cmdstan_offline.installed_build() == built

    messages: list[str] = []
    assert cmdstan_offline.build_offline(archive, say=messages.append) == built
    assert len(make_calls) == 1 and "already built" in messages[0]
    cmdstan_offline.build_offline(archive, say=lambda m: None, force=True)
    assert len(make_calls) == 2


def test_the_pathfinder_call_is_left_alone_for_a_stan_without_the_new_parameter(tmp_path, wheel, make_calls):
    (wheel / "include/stan/services/pathfinder/single.hpp").write_text("template <bool ReturnLpSamples, class M>\n")
    built = cmdstan_offline.build_offline(_archive(tmp_path / "c.tar.gz"), say=lambda m: None)
    assert (built / "src/cmdstan/command.hpp").read_text() == CALL_2_36


def test_a_failed_make_leaves_nothing_that_auto_would_find(tmp_path, wheel, monkeypatch):
    def failing_make(root, arguments, say):
        raise BackendError("make build failed (exit 2)")

    monkeypatch.setattr(cmdstan_offline, "_make", failing_make)
    with pytest.raises(BackendError, match="make build failed"):
        cmdstan_offline.build_offline(_archive(tmp_path / "c.tar.gz"), say=lambda m: None)
    assert cmdstan_offline.installed_build() is None
    assert [p.name.endswith(".partial") for p in cmdstan_offline.build_root().iterdir()] == [True]


def test_make_failure_quotes_the_end_of_its_log(tmp_path):
    (tmp_path / "makefile").write_text("build:\n\t@echo '--- Compiling ---'\n\t@echo 'fatal: no such header'\n"
                                       "\t@false\n")
    said: list[str] = []
    with pytest.raises(BackendError, match=r"(?s)make build failed \(exit 2\).*build\.log.*no such header"):
        cmdstan_offline._make(tmp_path, ["build"], said.append)
    assert said == ["Compiling"]


@pytest.mark.parametrize("kind", ["missing", "not cmdstan", "two folders"])
def test_a_wrong_archive_is_a_clear_error(tmp_path, wheel, make_calls, kind):
    path = tmp_path / "a.tar.gz"
    if kind == "not cmdstan":
        with tarfile.open(path, "w:gz") as tar:
            info = tarfile.TarInfo("pkg/README")
            tar.addfile(info, io.BytesIO(b""))
    elif kind == "two folders":
        _archive(path)
        with tarfile.open(path, "r:gz") as tar:
            members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
        with tarfile.open(path, "w:gz") as tar:
            for m, data in members:
                tar.addfile(m, io.BytesIO(data))
            extra = tarfile.TarInfo("other/file")
            tar.addfile(extra, io.BytesIO(b""))
    expected = "not found" if kind == "missing" else "not a CmdStan release source archive"
    with pytest.raises(BackendError, match=expected):
        cmdstan_offline.build_offline(path, say=lambda m: None)
    assert make_calls == []


def test_auto_finds_the_offline_build_only_when_cmdstanpy_knows_none(tmp_path, monkeypatch):
    cmdstanpy = pytest.importorskip("cmdstanpy")
    built = tmp_path / "cmdstan-2.36.0-abc"
    built.mkdir()
    (built / "makefile").write_text("CMDSTAN_VERSION := 2.36.0\n")
    monkeypatch.setattr(cmdstan_offline, "installed_build", lambda: built)
    monkeypatch.delenv("CMDSTAN", raising=False)

    def none_installed():
        raise ValueError("No CmdStan installation found")

    monkeypatch.setattr(cmdstanpy, "cmdstan_path", none_installed)
    set_to: list[str] = []
    monkeypatch.setattr(cmdstanpy, "set_cmdstan_path", set_to.append)
    assert backends.cmdstan_location() == str(built) and set_to == [str(built)]
    assert backends.cmdstan_available()

    monkeypatch.setenv("CMDSTAN", str(tmp_path / "a-broken-one"))  # the user's choice is not replaced
    assert backends.cmdstan_location() is None
    monkeypatch.delenv("CMDSTAN")
    monkeypatch.setattr(cmdstan_offline, "installed_build", lambda: None)
    assert backends.cmdstan_location() is None
    monkeypatch.setattr(cmdstanpy, "cmdstan_path", lambda: str(tmp_path / "own"))
    assert backends.cmdstan_location() == str(tmp_path / "own")


def test_cli_build_needs_an_archive_and_reports_where_it_built(tmp_path, wheel, make_calls, capsys):
    assert main(["cmdstan", "build"]) == 2
    assert "needs --archive" in capsys.readouterr().err
    assert main(["cmdstan", "build", "--archive", str(tmp_path / "none.tar.gz")]) != 0
    assert "not found" in capsys.readouterr().err
    archive = _archive(tmp_path / "cmdstan-2.36.0.tar.gz")
    assert main(["cmdstan", "build", "--archive", str(archive), "--jobs", "1"]) == 0
    out, err = capsys.readouterr()
    assert Path(out.strip()) == cmdstan_offline.installed_build() and "laying out" in err
    assert make_calls[-1][1][-1] == "-j1"


def test_the_build_does_not_follow_the_cache_folder(tmp_path, monkeypatch):
    """Benchmarks time cold compiles with HORIZON_ZOO_CACHE on an empty folder: CmdStan itself
    must still be found there."""
    monkeypatch.delenv("HORIZON_ZOO_CMDSTAN_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HORIZON_ZOO_CACHE", str(tmp_path / "empty"))
    assert cmdstan_offline.build_root() == tmp_path / "home" / ".cache" / "horizon-zoo" / "cmdstan-offline"
    monkeypatch.setenv("HORIZON_ZOO_CMDSTAN_DIR", str(tmp_path / "elsewhere"))
    assert cmdstan_offline.build_root() == tmp_path / "elsewhere"


def test_cli_info_names_the_offline_build_and_how_it_was_made(tmp_path, wheel, make_calls, monkeypatch, capsys):
    cmdstanpy = pytest.importorskip("cmdstanpy")
    monkeypatch.delenv("CMDSTAN", raising=False)  # restored after the test: set_cmdstan_path sets it

    def none_installed():
        raise ValueError("No CmdStan installation found")

    monkeypatch.setattr(cmdstanpy, "cmdstan_path", none_installed)
    assert main(["cmdstan", "info"]) == 1
    assert "horizon-zoo cmdstan build --archive" in capsys.readouterr().out
    built = cmdstan_offline.build_offline(_archive(tmp_path / "cmdstan-2.36.0.tar.gz"), say=lambda m: None)
    assert main(["cmdstan", "info"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == str(built) and "built offline by horizon-zoo on" in out and "CmdStan 2.36.0" in out
