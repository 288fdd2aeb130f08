"""The engine compiled with mypyc (`make compiled`) and its source decide alike, and a
compiled module built from another version of the source is never used (tactful/_native.py).
"""

from __future__ import annotations

import importlib.machinery
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import tactful
import tactful.engine
from tactful import _native

ROOT = Path(__file__).resolve().parent.parent
EXTENSION = importlib.machinery.EXTENSION_SUFFIXES[0]
#: Set by .ci/run: the engine must run compiled.
REQUIRE_COMPILED = os.environ.get("TACTFUL_REQUIRE_COMPILED") == "1"
PURE = os.environ.get(_native.PURE_ENV, "") not in ("", "0")


def test_the_engine_runs_compiled_where_it_was_built() -> None:
    built = any(
        str(p).endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))
        for p in _native.compiled_files(ROOT / "tactful" / "engine.py")
    )
    if REQUIRE_COMPILED:
        assert built, "make compiled did not build tactful/engine (see its output)"
    if built and not PURE:
        assert _native.compiled(tactful.engine), tactful.engine.__file__
    if not built:
        assert not _native.compiled(tactful.engine)


def test_the_source_decides_as_the_compiled_engine() -> None:
    """The engine's snapshot, equivalence and story tests, run again with the engine from
    source: both forms must give every decision the snapshot holds."""
    if not _native.compiled(tactful.engine):
        pytest.skip("the engine runs from source here: the suite itself covers it")
    env = {**os.environ, _native.PURE_ENV: "1"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:xdist",
            "-q",
            "tests/test_engine_equivalence.py",
            "tests/test_stories.py",
            "tests/test_native.py::test_the_engine_runs_compiled_where_it_was_built",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def _package_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "tactful"
    shutil.copytree(
        ROOT / "tactful",
        copy,
        ignore=shutil.ignore_patterns("*.so", "*.compiled-from", "__pycache__"),
    )
    return copy


def _import_engine(path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    code = "import tactful, tactful.engine as e; print(e.__file__)"
    environ = {k: v for k, v in os.environ.items() if k != _native.PURE_ENV}
    return subprocess.run(
        [sys.executable, "-W", "always::RuntimeWarning", "-c", code],
        env={**environ, "PYTHONPATH": str(path), **env},
        cwd=path,
        capture_output=True,
        text=True,
    )


def test_a_compiled_engine_built_from_other_source_is_not_used(tmp_path: Path) -> None:
    """An edited engine.py beside an older build runs from source, with a warning that
    says how to rebuild; the same build recorded as made from this source is imported (a
    stand-in that is no extension at all, so importing it fails loudly)."""
    package = _package_copy(tmp_path)
    source = package / "engine.py"
    (package / f"engine{EXTENSION}").write_bytes(b"not a shared object")
    stamp = _native.stamp_of(source)
    stamp.write_text("0" * 64 + "\n")

    stale = _import_engine(tmp_path)
    assert stale.returncode == 0, stale.stderr
    assert stale.stdout.strip() == str(source)
    assert "engine.py changed since it was compiled (run `make compiled`)" in stale.stderr

    stamp.unlink()
    unrecorded = _import_engine(tmp_path)
    assert unrecorded.stdout.strip() == str(source)
    assert "nothing records which source it was compiled from" in unrecorded.stderr

    stamp.write_text(_native.source_hash(source) + "\n")
    asked = _import_engine(tmp_path, **{_native.PURE_ENV: "1"})
    assert asked.returncode == 0 and asked.stdout.strip() == str(source)
    assert "RuntimeWarning" not in asked.stderr  # asked for: no warning

    current = _import_engine(tmp_path)
    assert current.returncode != 0  # the "compiled module" was imported
    assert "ImportError" in current.stderr


def test_no_compiled_module_means_the_source_without_a_word(tmp_path: Path) -> None:
    package = _package_copy(tmp_path)
    plain = _import_engine(tmp_path)
    assert plain.returncode == 0
    assert plain.stdout.strip() == str(package / "engine.py")
    assert "RuntimeWarning" not in plain.stderr
    assert _native.why_source(package / "engine.py") is None
