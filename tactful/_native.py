"""The compiled engine, and when its source runs instead.

`make compiled` (part of `make serve`, `make test` and `make bench`) compiles
`tactful/engine.py` with mypyc into a C extension beside it (`tools/compile.py`), which
Python imports in its place: the same code, decided the same way, with the interpreter's
overhead gone from the memoised path that most decisions take. The source remains the
truth, and runs instead of the compiled module (`load`, before the package imports the
engine) when:

- there is none (a fresh checkout, a machine without a C compiler);
- it was compiled from another version of the source: the compiler records the source's
  SHA-256 beside it, so an edited engine is never shadowed by a stale build (a warning
  names the fix: `make compiled`);
- `TACTFUL_PURE_PYTHON=1` asks for the source (the test suite uses it to check that both
  decide alike).
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import os
import sys
import warnings
from pathlib import Path
from types import ModuleType

#: Modules of the package that may be compiled.
COMPILED = ("engine",)
#: Beside a compiled module: the SHA-256 of the source it was compiled from.
STAMP_SUFFIX = ".compiled-from"
PURE_ENV = "TACTFUL_PURE_PYTHON"

_PACKAGE = Path(__file__).resolve().parent


def source_hash(source: Path) -> str:
    return hashlib.sha256(source.read_bytes()).hexdigest()


def stamp_of(source: Path) -> Path:
    """Where the SHA-256 of the source a compiled module was built from is kept."""
    return source.with_name(source.stem + STAMP_SUFFIX)


def _extensions(source: Path, stem: str) -> list[Path]:
    """The extension modules named `stem` beside `source` that exist."""
    found = [source.with_name(stem + s) for s in importlib.machinery.EXTENSION_SUFFIXES]
    return [path for path in found if path.exists()]


def compiled_files(source: Path) -> list[Path]:
    """What compiling `source` left in the package: the extension, mypyc's runtime
    library for it, and the stamp."""
    stamp = stamp_of(source)
    found = _extensions(source, source.stem) + _extensions(source, f"{source.stem}__mypyc")
    return ([stamp] if stamp.exists() else []) + found


def why_source(source: Path) -> str | None:
    """Why the module compiled from `source` is not to be imported (None: it may be, or
    there is no compiled module to import)."""
    if not _extensions(source, source.stem):
        return None
    if os.environ.get(PURE_ENV, "") not in ("", "0"):
        return f"{PURE_ENV} is set"
    try:
        built_from = stamp_of(source).read_text().strip()
    except OSError:
        return "nothing records which source it was compiled from (run `make compiled`)"
    if built_from != source_hash(source):
        return f"{source.name} changed since it was compiled (run `make compiled`)"
    return None


def load() -> None:
    """Import from source each module whose compiled form is not to be used (see the
    module's docstring); the rest import as usual."""
    for name in COMPILED:
        full = f"tactful.{name}"
        source = _PACKAGE / f"{name}.py"
        why = why_source(source)
        if why is None or full in sys.modules:
            continue
        if not os.environ.get(PURE_ENV):
            warnings.warn(
                f"tactful runs {source.name} from source, not its compiled module: {why}",
                RuntimeWarning,
                stacklevel=2,
            )
        spec = importlib.util.spec_from_file_location(full, source)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[full] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[full]
            raise


def compiled(module: ModuleType) -> bool:
    """Whether `module` runs compiled (not from its `.py` source)."""
    return not str(module.__file__).endswith(".py")
