"""A real CmdStan without the internet: CmdStan's release source plus the Stan toolchain that
PyStan's ``httpstan`` wheel already ships.

``cmdstanpy.install_cmdstan()`` downloads CmdStan together with Stan, Stan Math and the compiled
``stanc``. Offline, the release source (makefile, ``make/``, ``src/cmdstan``) is the only missing
piece: httpstan's wheel carries the Stan and Stan Math headers, Eigen, Boost, SUNDIALS and TBB
headers, prebuilt ``libtbb.so.2`` and SUNDIALS archives, and a ``stanc`` binary. This module lays
those out the way CmdStan's makefile expects, supplies the three of Stan Math's make files the
makefile includes (``horizon_zoo/cmdstan-make/``: flags only, the libraries are the wheel's), and
runs ``make build``.

The result lives under :func:`build_root`, keyed by the httpstan installation it
links against (its executables load that installation's ``libtbb.so.2`` through an rpath), and
:func:`installed_build` lets ``--backend auto`` find it when CmdStanPy knows no other CmdStan.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

from horizon_zoo.backends.toolchain import httpstan_dir
from horizon_zoo.errors import BackendError

MAKE_FILES = Path(__file__).with_name("cmdstan-make")
MARKER = "horizon-zoo-build.json"

# CmdStan 2.36 calls Stan's single-path Pathfinder with two template arguments; Stan 2.37 (httpstan
# 4.17 ships 2.39) added a second bool before the model type, so the call is given both bools.
_PATHFINDER_CALL = re.compile(r"pathfinder_lbfgs_single<\s*false,\s*stan::model::model_base>")
_PATHFINDER_FIXED = "pathfinder_lbfgs_single<false, false, stan::model::model_base>"


def _httpstan_key(directory: Path) -> str:
    """Tied to this httpstan installation's location and version: a build links its libraries."""
    from importlib.metadata import version

    return hashlib.sha256(f"{directory}|{version('httpstan')}".encode()).hexdigest()[:10]


def build_root() -> Path:
    """Where offline builds live: ``$HORIZON_ZOO_CMDSTAN_DIR``, else
    ``~/.cache/horizon-zoo/cmdstan-offline``. An installation rather than a cache entry, so it does
    not follow ``$HORIZON_ZOO_CACHE`` (benchmarks point that at an empty folder to time cold
    compiles) and ``horizon-zoo cache clear`` leaves it alone."""
    env = os.environ.get("HORIZON_ZOO_CMDSTAN_DIR")
    return Path(env) if env else Path.home() / ".cache" / "horizon-zoo" / "cmdstan-offline"


def installed_build() -> Path | None:
    """The finished offline build for the current httpstan installation, or None."""
    try:
        key = _httpstan_key(httpstan_dir())
    except Exception:  # no httpstan (BackendError), or its metadata is unreadable
        return None
    root = build_root()
    if not root.is_dir():
        return None
    for candidate in sorted(root.glob(f"cmdstan-*-{key}")):
        if (candidate / MARKER).is_file():
            return candidate
    return None


def build_offline(archive: Path, *, jobs: int = 2, say: Callable[[str], None] = print,
                  force: bool = False) -> Path:
    """Build CmdStan from ``archive`` (CmdStan's release source ``cmdstan-X.Y.Z.tar.gz``) and the
    installed httpstan wheel; return the CmdStan directory.

    Idempotent: a finished build for this httpstan installation is returned at once unless
    ``force``. The tree is assembled and built under a ``.partial`` name and renamed when ``make``
    succeeds, so an interrupted or failed build is never found by ``--backend auto``.
    """
    archive = Path(archive)
    if not archive.is_file():
        raise BackendError(f"CmdStan source archive not found: {archive}")
    for tool in ("make", "g++"):
        if shutil.which(tool) is None:
            raise BackendError(f"building CmdStan needs '{tool}' on PATH")
    source = httpstan_dir()
    version = _archive_version(archive)
    target = build_root() / f"cmdstan-{version}-{_httpstan_key(source)}"
    if (target / MARKER).is_file() and not force:
        say(f"CmdStan {version} is already built at {target}")
        return target

    from horizon_zoo.backends.common import _build_lock

    with _build_lock(f"cmdstan-offline-{target.name}"):
        if (target / MARKER).is_file() and not force:
            return target
        staging = target.with_name(target.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        started = time.perf_counter()
        say(f"unpacking {archive.name} into {staging}")
        _unpack(archive, staging)
        say(f"laying out the Stan toolchain from {source}")
        _lay_out(staging, source)
        say(f"running make build with {jobs} job(s); the full log is {staging / 'build.log'} "
            "(about 10 minutes on 2 cores)")
        _make(staging, ["build", "STAN_THREADS=TRUE", f"-j{jobs}"], say)
        (staging / MARKER).write_text(json.dumps({
            "cmdstan": version,
            "archive_sha256": _sha256(archive),
            "httpstan": str(source),
            "built": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "seconds": round(time.perf_counter() - started, 1),
        }, indent=1))
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    say(f"CmdStan {version} built in {(time.perf_counter() - started) / 60:.1f} min at {target}")
    return target


def _archive_version(archive: Path) -> str:
    with tarfile.open(archive) as tar:
        top = {name.split("/", 1)[0] for name in tar.getnames()}
        makefile = next((m for m in tar.getmembers() if m.name.count("/") == 1
                         and m.name.endswith("/makefile")), None)
        text = tar.extractfile(makefile).read().decode() if makefile else ""  # type: ignore[union-attr]
    found = re.search(r"CMDSTAN_VERSION := (\d+\.\d+\.\d+)", text)
    if len(top) != 1 or not found:
        raise BackendError(f"{archive} is not a CmdStan release source archive "
                           "(expected one cmdstan-X.Y.Z/ folder with a makefile)")
    return found.group(1)


def _unpack(archive: Path, staging: Path) -> None:
    staging.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        for member in members:
            member.name = member.name.split("/", 1)[1] if "/" in member.name else ""
        tar.extractall(staging, members=[m for m in members if m.name], filter="data")


def _lay_out(root: Path, httpstan: Path) -> None:
    include, lib = httpstan / "include", httpstan / "lib"
    # A copy, not a link: CmdStan writes its precompiled header beside model_header.hpp.
    shutil.copytree(include / "stan", root / "stan" / "src" / "stan")
    make_dir = root / "stan" / "lib" / "stan_math" / "make"
    make_dir.mkdir(parents=True)
    for name in ("compiler_flags", "dependencies", "libraries"):
        shutil.copy(MAKE_FILES / name, make_dir / name)
    # Every other library of the wheel, by link, in a folder without stan/ so that the copy above
    # is the only stan/ on the include path.
    deps = root / "deps" / "include"
    deps.mkdir(parents=True)
    for entry in sorted(include.iterdir()):
        if entry.name != "stan":
            (deps / entry.name).symlink_to(entry)
    (root / "bin").mkdir(exist_ok=True)
    shutil.copy2(httpstan / "stanc", root / "bin" / "stanc")
    (root / "make" / "local").write_text(
        "# Written by horizon_zoo.cmdstan_offline: the httpstan wheel supplies Stan's toolchain.\n"
        f"HTTPSTAN_LIB := {lib}\n"
        "DEPS_INCLUDE := deps/include\n"
        "RAPIDJSON := deps/include/\n")
    command = root / "src" / "cmdstan" / "command.hpp"
    text, count = _PATHFINDER_CALL.subn(_PATHFINDER_FIXED, command.read_text())
    single = include / "stan" / "services" / "pathfinder" / "single.hpp"
    if "InMultiPathfinder" in single.read_text() and count:
        command.write_text(text)


def _make(root: Path, arguments: list[str], say: Callable[[str], None]) -> None:
    log_path = root / "build.log"
    with open(log_path, "w") as log, subprocess.Popen(
            ["make", *arguments], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, errors="replace") as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            if line.startswith("--- "):  # CmdStan's own stage headers
                say(line.strip(" -\n"))
        code = proc.wait()
    if code != 0:
        tail = "".join(log_path.read_text(errors="replace").splitlines(keepends=True)[-25:])
        raise BackendError(f"make {' '.join(arguments)} failed (exit {code}); the full log is {log_path}. "
                           f"Its last lines:\n{tail}")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
