"""Text tactful will not keep: the NUL character.

PostgreSQL cannot hold U+0000 in text or JSON (SQLite can), so a value carrying it would be
stored by one store and fail at the end in the other. Every way in refuses it up front,
naming the field: the API's bodies (`service.schemas.Strict`), path and query parameters
(`service.deps.plain_text_params`), and the Segment, SendGrid and Twilio translations.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

NUL_MESSAGE = "text may not contain the NUL character (U+0000)"


def nul_path(value: Any, path: str = "") -> str | None:
    """Where the first NUL character in `value` is (`properties.note`, `tags[2]`; the
    empty path for `value` itself), or None."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, Mapping):
        for key, item in value.items():
            name = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and "\x00" in key:
                return name
            found = nul_path(item, name)
            if found is not None:
                return found
        return None
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found = nul_path(item, f"{path}[{i}]")
            if found is not None:
                return found
    return None
