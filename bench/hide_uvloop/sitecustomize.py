"""Put this folder on PYTHONPATH to run tactful as if uvicorn[standard] were not installed:
uvicorn then falls back to its pure-Python HTTP parser (h11) and asyncio's own event loop.
For benchmarks only (`PYTHONPATH=bench/hide_uvloop .venv/bin/python bench/run.py ...`)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType


class _Hide:
    def find_spec(
        self, name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if name.split(".")[0] in ("uvloop", "httptools"):
            raise ImportError(f"{name} is hidden (bench/hide_uvloop)")
        return None


sys.meta_path.insert(0, _Hide())
