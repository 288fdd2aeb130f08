"""Audience files: customer ids one per line, or a CSV with a `customer_id` column.

The CLI reads the file it is given; the service reads only files inside its configured
`audience_dir` (`TACTFUL_AUDIENCE_DIR`), named relative to it.
"""

from __future__ import annotations

import csv
from pathlib import Path

from tactful.text import NUL_MESSAGE


class IdsFileError(ValueError):
    """A file that cannot be read as an audience, with `file:line:` in its message."""


def read_ids(path: Path) -> list[str]:
    """The ids in `path`, in file order (blank lines skipped in a plain list)."""
    try:
        with path.open(encoding="utf-8", newline="") as f:
            first = f.readline()
            f.seek(0)
            if "," in first or first.strip() == "customer_id":
                reader = csv.DictReader(f)
                if not reader.fieldnames or "customer_id" not in reader.fieldnames:
                    raise IdsFileError(f"{path}: a CSV needs a `customer_id` column")
                rows = [(row.get("customer_id") or "").strip() for row in reader]
                start = 2
            else:
                rows = [line.strip() for line in f]
                start = 1
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise IdsFileError(f"{path}: {reason}") from None
    ids = []
    for i, cid in enumerate(rows, start):
        if not cid:
            if start == 2:
                raise IdsFileError(f"{path}:{i}: customer_id is empty")
            continue
        if "\x00" in cid:
            raise IdsFileError(f"{path}:{i}: customer_id: {NUL_MESSAGE}")
        ids.append(cid)
    return ids


def inside(folder: Path, name: str) -> Path:
    """`name` as a file inside `folder`; ValueError for an absolute name or one that
    leads out of it (`..`, a symbolic link elsewhere)."""
    if not name or Path(name).is_absolute():
        raise ValueError("give a file name relative to the audience directory")
    base = folder.resolve()
    path = (base / name).resolve()
    if not path.is_relative_to(base):
        raise ValueError("the file must be inside the audience directory")
    return path
