"""`content`: what a message says. Deny creepy or manipulative text; flag what deserves a look."""

from __future__ import annotations

import re
from functools import cached_property
from typing import Literal

from pydantic import Field, field_validator

from tactful.rules.base import NEVER, Context, Rule


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

    def _match(self, ctx: Context) -> str | None:
        content = ctx.proposal.content
        if content is None:
            return None
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

    def details(self, ctx: Context, t: float) -> dict[str, str]:
        return {"match": self._match(ctx) or ""}
