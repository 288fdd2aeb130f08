"""`content`: deny text that reveals tracking or fakes urgency; flag abandoned-cart discounts."""

from __future__ import annotations

import pytest

from tactful import Policy, PolicyError, Verdict
from tests.rules.conftest import TUESDAY, decide, ev, policy, propose, rules_of, state

COURTESY = Policy.load("courtesy")


@pytest.mark.parametrize(
    "body",
    [
        "Hi! I saw you checked out these pages on our site.",
        "I noticed you were looking at our winter range",
        "We noticed you viewed the premium plan.",
        "we saw that you were browsing jackets",
        "You visited our pricing page yesterday",
        "you looked at our site twice this week",
        "i SEE YOU'VE BEEN LOOKING at sofas",
    ],
)
def test_messages_that_reveal_tracking_are_denied(body: str) -> None:
    d = decide(COURTESY, state(), propose("email", "sales", body=body), TUESDAY)
    assert d.verdict is Verdict.DENY
    assert rules_of(d) == {"reveals-tracking"}
    assert d.reasons[0].message.startswith("The message reveals that the customer was tracked (")


@pytest.mark.parametrize(
    "body",
    [
        "We saw record demand this winter.",
        "Thanks for your order: you can track it on our site.",
        "As you asked, here is the pricing page.",
    ],
)
def test_ordinary_messages_pass(body: str) -> None:
    assert decide(COURTESY, state(), propose("email", "sales", body=body), TUESDAY).allowed


def test_tracking_in_the_subject_counts_too() -> None:
    d = decide(
        COURTESY,
        state(),
        propose("email", "marketing", subject="We noticed you viewed this"),
        TUESDAY,
    )
    assert d.verdict is Verdict.DENY


def test_service_messages_are_not_checked() -> None:
    body = "I saw you were looking at the help page for returns: here is how."
    assert decide(COURTESY, state(), propose("email", "service", body=body), TUESDAY).allowed


@pytest.mark.parametrize(
    "subject", ["URGENT: your chance to grow", "Last call - act now!", "urgent"]
)
def test_fake_urgency_in_the_subject_is_denied(subject: str) -> None:
    d = decide(COURTESY, state(), propose("email", "sales", subject=subject), TUESDAY)
    assert d.verdict is Verdict.DENY and rules_of(d) == {"fake-urgency"}


def test_urgency_words_in_the_body_or_inside_other_words_pass() -> None:
    body_only = propose("email", "sales", subject="Your plan", body="This is not URGENT at all.")
    assert decide(COURTESY, state(), body_only, TUESDAY).allowed
    assert decide(
        COURTESY, state(), propose("email", "sales", subject="Urgently needed?"), TUESDAY
    ).allowed


def test_a_discount_on_an_abandoned_cart_is_flagged_not_denied() -> None:
    st = state(ev("cart_updated", TUESDAY.replace(hour=8)))
    d = decide(
        COURTESY,
        st,
        propose("email", "marketing", trigger="cart_updated", subject="Your cart", discount=True),
        TUESDAY,
    )
    assert d.verdict is Verdict.ALLOW
    assert [f.rule for f in d.flags] == ["abandoned-cart-discount"]
    assert d.flags[0].kind == "content"


def test_a_discount_without_a_cart_trigger_is_not_flagged() -> None:
    d = decide(
        COURTESY, state(), propose("email", "marketing", subject="Sale", discount=True), TUESDAY
    )
    assert d.allowed and d.flags == ()


def test_case_sensitive_patterns() -> None:
    pol = policy("""
        - id: shout
          kind: content
          fields: [body]
          ignore_case: false
          patterns: ["FREE"]
          message: "shouting {match}"
    """)
    d = decide(pol, state(), propose("email", "marketing", body="Get it FREE"), TUESDAY)
    assert d.verdict is Verdict.DENY and d.reasons[0].message == "shouting 'FREE'"
    assert decide(pol, state(), propose("email", "marketing", body="get it free"), TUESDAY).allowed
    assert decide(pol, state(), propose("email", "marketing", subject="FREE"), TUESDAY).allowed


def test_no_content_no_match() -> None:
    assert decide(COURTESY, state(), propose("email", "sales"), TUESDAY).allowed


def test_an_invalid_pattern_is_a_policy_error_on_its_line() -> None:
    with pytest.raises(PolicyError) as info:
        policy("""
            - id: broken
              kind: content
              patterns: ["(unclosed"]
              message: m
        """)
    assert info.value.field == "rules[0].patterns"
    assert info.value.line == 7  # the header takes 3 lines, the indented text starts blank
    assert "not a valid regular expression" in str(info.value)
