"""Prometheus metrics of one service instance (its own registry, so tests can make many)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from tactful.model import Decision


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.decisions = Counter(
            "tactful_decisions_total",
            "Decisions by verdict.",
            ["verdict", "channel", "purpose"],
            registry=self.registry,
        )
        self.rule_hits = Counter(
            "tactful_rule_hits_total",
            "Rules that held back or flagged a contact, by rule and verdict.",
            ["rule", "verdict"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "tactful_decision_seconds",
            "Time to decide and place the hold, store included.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=self.registry,
        )
        self.group_size = Histogram(
            "tactful_decision_group_size",
            "Decisions made in one transaction (group commit: requests that arrived "
            "together); 1 is a decision alone.",
            buckets=(1, 2, 4, 8, 16, 32, 64),
            registry=self.registry,
        )
        self.events = Counter(
            "tactful_events_total",
            "Events ingested, by source.",
            ["source"],
            registry=self.registry,
        )
        self.store_errors = Counter(
            "tactful_store_errors_total",
            "Requests refused because the store failed.",
            registry=self.registry,
        )

    def observe(self, decision: Decision, channel: str, purpose: str, seconds: float) -> None:
        verdict = decision.verdict.value
        self.decisions.labels(verdict, channel, purpose).inc()
        for reason in decision.reasons:
            self.rule_hits.labels(reason.rule, verdict).inc()
        for flag in decision.flags:
            self.rule_hits.labels(flag.rule, "flag").inc()
        self.latency.observe(seconds)
