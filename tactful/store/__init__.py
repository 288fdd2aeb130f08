"""Where the ledger lives: one module per backend, chosen by URL."""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tactful.store.base import (
    ApiKey,
    AuditQuery,
    Conflict,
    DecisionRecord,
    NotFound,
    PolicyVersion,
    Store,
    StoreError,
)

if TYPE_CHECKING:
    from tactful.store.sql import SqlStore

#: URL scheme -> "module:Class" of the backend serving it, imported on first use so that
#: the in-memory library never loads SQLAlchemy. A new backend adds a module and a line.
BACKENDS: dict[str, str] = {
    "sqlite": "tactful.store.sqlite:SqliteStore",
    "sqlite+pysqlite": "tactful.store.sqlite:SqliteStore",
    "postgresql": "tactful.store.postgresql:PostgresStore",
    "postgres": "tactful.store.postgresql:PostgresStore",
    "postgresql+psycopg": "tactful.store.postgresql:PostgresStore",
}

DEFAULT_URL = "sqlite:///tactful.db"


def _redacted(url: str) -> str:
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


def backend(url: str) -> Callable[..., SqlStore]:
    """The store class for this URL's scheme; ValueError naming the supported ones."""
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    target = BACKENDS.get(scheme)
    if target is None:
        supported = ", ".join(f"{s}://" for s in BACKENDS)
        raise ValueError(
            f"unsupported database URL {_redacted(url)!r}: the scheme must be one of "
            f"{supported} (e.g. sqlite:///tactful.db or postgresql://user@host/db)"
        )
    module, _, name = target.partition(":")
    cls: Callable[..., SqlStore] = getattr(importlib.import_module(module), name)
    return cls


def open_store(url: str = DEFAULT_URL, *, migrate: bool = True, **options: Any) -> Store:
    """Open the store at `url`, first creating or upgrading its tables (unless `migrate`
    is False). `options` go to the backend (e.g. `state_cache`, customers whose folded
    state is kept between decisions). Raises StoreError if the database cannot be reached."""
    store = backend(url)(url, **options)
    if migrate:
        try:
            store.migrate()
        except BaseException:
            store.close()
            raise
    return store


__all__ = [
    "BACKENDS",
    "DEFAULT_URL",
    "ApiKey",
    "AuditQuery",
    "Conflict",
    "DecisionRecord",
    "NotFound",
    "PolicyVersion",
    "Store",
    "StoreError",
    "backend",
    "open_store",
]
