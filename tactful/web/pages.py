"""Jinja2 templates shipped inside the package (no CDN, no JavaScript needed)."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

env = Environment(
    loader=PackageLoader("tactful.web", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(template: str, **context: Any) -> str:
    return env.get_template(template).render(**context)
