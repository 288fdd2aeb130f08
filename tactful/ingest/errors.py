"""How ingestion reports bad input: one error per problem, naming the field (and the item)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tactful.model import ID_MAX


class IngestError(ValueError):
    """A payload, or one item in it, that cannot be translated.

    `field` is a path into the payload (`batch[3].timestamp`, `[0].event`, `From`) so the
    HTTP layer can tell the sender exactly what to fix; `index` is the item's position in
    a batch, when there is one.
    """

    def __init__(self, field: str, message: str, *, index: int | None = None) -> None:
        self.field = field
        self.message = message
        self.index = index
        super().__init__(f"{field}: {message}" if field else message)

    def as_dict(self) -> dict[str, Any]:
        return {"field": self.field, "message": self.message, "index": self.index}


def parse_json(body: bytes | str, *, field: str = "body") -> Any:
    """Decode a JSON request body, or raise an `IngestError` naming `field`."""
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IngestError(field, f"not valid JSON ({exc})") from exc


def json_size(value: Any) -> int:
    """Bytes of `value` encoded as compact UTF-8 JSON: what a size limit is measured on."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode())


def identifier(value: Any, fail: Callable[[str], IngestError]) -> str | None:
    """An id field (a customer, message or event id: text or a number), stripped; None when
    absent or blank. Anything else, or one longer than `ID_MAX`, is `fail(problem)`."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise fail(f"must be a string, not {type(value).__name__}")
    text = str(value).strip()
    if len(text) > ID_MAX:
        raise fail(f"at most {ID_MAX} characters")
    return text or None
