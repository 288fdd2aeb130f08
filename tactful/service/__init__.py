"""The HTTP service: thin FastAPI routes over the engine and a durable store."""

from tactful.service.app import create_app

__all__ = ["create_app"]
