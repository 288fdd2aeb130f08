"""Tests start real `tactful serve` processes through the package's one helper."""

from __future__ import annotations

from tactful.service.testing import TACTFUL, Server, create_key, free_port

__all__ = ["TACTFUL", "Server", "create_key", "free_port"]
