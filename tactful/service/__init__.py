"""The HTTP service: thin FastAPI routes over the engine and a durable store.

`create_app` is imported when first asked for, so that what needs only a piece of the
service (the CLI's settings, say) does not load FastAPI and every route (~1.2 s)."""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tactful.service.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from tactful.service.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
