"""Compile the engine's hot module with mypyc, in place: `make compiled` runs this.

`tactful/engine.py` stays the source of truth and runs as it is wherever no compiled
module sits beside it (a fresh checkout, a machine without a C compiler). Compiled, it
decides the same way about twice as fast on the memoised path; `tactful/_native.py`
loads the source instead when the compiled module was built from another version of it,
or when TACTFUL_PURE_PYTHON=1.

mypyc builds through setuptools, which reads a `pyproject.toml` in the directory it runs
in; ours is hatchling's, so the build runs in a scratch directory that links the package.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "tactful"
#: The modules compiled, as paths in the package.
MODULES = ("engine.py",)


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from tactful._native import STAMP_SUFFIX, compiled_files, source_hash

    started = time.monotonic()
    for module in MODULES:
        for old in compiled_files(PACKAGE / module):
            old.unlink()
    with tempfile.TemporaryDirectory(prefix="tactful-mypyc-") as scratch:
        os.symlink(PACKAGE, Path(scratch) / "tactful")
        command = [sys.executable, "-m", "mypyc", *(f"tactful/{m}" for m in MODULES)]
        print(f"compiling {', '.join(MODULES)} with mypyc (about 30 s) ...", flush=True)
        done = subprocess.run(command, cwd=scratch, capture_output=True, text=True)
        if done.returncode != 0:
            sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
            print("mypyc failed: tactful runs its pure-Python engine", file=sys.stderr)
            return done.returncode
        # mypyc puts the shared runtime of one compiled module beside it in the package,
        # of several in the directory it ran in.
        for extra in Path(scratch).glob("*__mypyc*"):
            shutil.move(str(extra), PACKAGE / extra.name)
    for module in MODULES:
        source = PACKAGE / module
        (source.with_name(source.stem + STAMP_SUFFIX)).write_text(source_hash(source) + "\n")
    print(f"compiled in {time.monotonic() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
