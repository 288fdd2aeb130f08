"""`content`: what a message says. Deny creepy or manipulative text; flag what deserves a look."""

from __future__ import annotations

import re
from functools import cached_property
from typing import Literal

from pydantic import Field, field_validator

from tactful.model import Content
from tactful.rules.base import NEVER, Context, Rule

#: Bound on the texts a content rule remembers its verdict on.
MATCH_CACHE_SIZE = 4096


class ContentRule(Rule):
    """Match `patterns` (regular expressions, case-insensitive unless `ignore_case: false`)
    against the proposal's `fields` (subject, body); with `discount: true`, match proposals
    that offer a discount. Mode `deny` (default) refuses, `flag` lets it through marked."""

    kind: Literal["content"]
    patterns: tuple[str, ...] = ()
    fields: tuple[Literal["subject", "body"], ...] = ("subject", "body")
    ignore_case: bool = True
    discount: bool = Field(default=False, description="Match proposals that offer a discount.")
    default_mode = "deny"
    timeless = True

    @field_validator("patterns")
    @classmethod
    def _compile(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in v:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(
                    f"pattern {pattern!r} is not a valid regular expression: {exc}"
                ) from None
        return v

    @cached_property
    def regex(self) -> re.Pattern[str] | None:
        if not self.patterns:
            return None
        flags = re.IGNORECASE if self.ignore_case else 0
        return re.compile("|".join(f"(?:{p})" for p in self.patterns), flags)

    def describe(self) -> str:
        parts = []
        if self.patterns:
            parts.append(f"{', '.join(self.fields)} matching {' | '.join(self.patterns)}")
        if self.discount:
            parts.append("offers a discount")
        return " or ".join(parts)

    @cached_property
    def _seen(self) -> dict[tuple[bool, str | None, str | None], str | None]:
        """Memo of `_match` by text: a campaign sends one text to many customers."""
        return {}

    def _match(self, ctx: Context) -> str | None:
        content = ctx.proposal.content
        if content is None:
            return None
        key = (content.discount, content.subject, content.body)
        seen = self._seen
        if key in seen:
            return seen[key]
        if len(seen) >= MATCH_CACHE_SIZE:
            seen.clear()
        found = seen[key] = self._search(content)
        return found

    def _search(self, content: Content) -> str | None:
        if self.discount and content.discount:
            return "a discount"
        regex = self.regex
        if regex is not None:
            for name in self.fields:
                text = getattr(content, name)
                if text:
                    m = regex.search(text)
                    if m:
                        return repr(m.group(0))
        return None

    def check(self, ctx: Context, t: float) -> float:
        return NEVER if self._match(ctx) else t

    def steady(self, ctx: Context, t: float, u: float) -> float:
        # The text is the proposal's: the same answer and reason at every instant.
        return NEVER

    def details(self, ctx: Context, t: float) -> dict[str, str]:
        return {"match": self._match(ctx) or ""}
