"""Compile the engine's hot module with mypyc, in place: `make compiled` runs this.

`tactful/engine.py` stays the source of truth and runs as it is wherever no compiled
module sits beside it (a fresh checkout, a machine without a C compiler). Compiled, it
decides the same way, some 12% faster in `bench/bench_engine.py`; `tactful/_native.py`
loads the source instead when the compiled module was built from another version of it,
or when TACTFUL_PURE_PYTHON=1.

mypyc builds through setuptools, which reads a `pyproject.toml` in the directory it runs
in; ours is hatchling's, so the build runs in a scratch directory that links the package.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "tactful"


def _native() -> ModuleType:
    """`tactful/_native.py` on its own: importing the package would load the engine (and
    warn that the build about to be replaced is stale)."""
    spec = importlib.util.spec_from_file_location("tactful_native", PACKAGE / "_native.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> int:
    native = _native()
    modules = [f"{name}.py" for name in native.COMPILED]
    started = time.monotonic()
    for module in modules:
        for old in native.compiled_files(PACKAGE / module):
            old.unlink()
    with tempfile.TemporaryDirectory(prefix="tactful-mypyc-") as scratch:
        os.symlink(PACKAGE, Path(scratch) / "tactful")
        command = [sys.executable, "-m", "mypyc", *(f"tactful/{m}" for m in modules)]
        print(f"compiling {', '.join(modules)} with mypyc (about 30 s) ...", flush=True)
        done = subprocess.run(command, cwd=scratch, capture_output=True, text=True)
        if done.returncode != 0:
            sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
            print("mypyc failed: tactful runs its pure-Python engine", file=sys.stderr)
            return done.returncode
        # mypyc puts the shared runtime of one compiled module beside it in the package,
        # of several in the directory it ran in.
        for extra in Path(scratch).glob("*__mypyc*"):
            shutil.move(str(extra), PACKAGE / extra.name)
    for module in modules:
        source = PACKAGE / module
        native.stamp_of(source).write_text(native.source_hash(source) + "\n")
    print(f"compiled in {time.monotonic() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
