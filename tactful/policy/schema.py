"""A JSON Schema of the policy language, for editors (YAML language servers read it)."""

from __future__ import annotations

from typing import Any

from tactful.policy.document import TOP_KEYS
from tactful.rules import KINDS

DURATION = {
    "anyOf": [
        {"type": "number", "minimum": 0, "description": "seconds"},
        {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*[a-z]+\s*$", "examples": ["48h", "7d"]},
    ]
}
#: Fields written as durations in YAML ("48h"), whatever their Python type.
DURATION_FIELDS = {"window", "gap", "quiet", "delay", "half_life"}


def _rule_schema(kind: str) -> dict[str, Any]:
    schema = KINDS[kind].model_json_schema(mode="validation")
    props = schema.get("properties", {})
    for name in DURATION_FIELDS & props.keys():
        extra = [x for x in props[name].get("anyOf", []) if x.get("type") == "string"]
        props[name] = {"anyOf": [*DURATION["anyOf"], *[e for e in extra if "enum" in e]]}
        if "enum" in props[name]:
            props[name]["anyOf"].append({"enum": props[name]["enum"]})
    if "schedule" in props:
        props["schedule"] = {
            "type": "object",
            "description": "days (mon, tue-fri, daily) -> '09:00-20:00', a list of them, "
            "or 'closed'",
            "additionalProperties": {
                "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]
            },
        }
    props["kind"] = {"const": kind}
    schema["title"] = f"{kind} rule"
    return schema


def policy_json_schema() -> dict[str, Any]:
    defs: dict[str, Any] = {}
    rule_refs = []
    for kind in sorted(KINDS):
        schema = _rule_schema(kind)
        for name, sub in schema.pop("$defs", {}).items():
            defs[name] = sub
        defs[f"rule_{kind}"] = schema
        rule_refs.append({"$ref": f"#/$defs/rule_{kind}"})
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "tactful policy",
        "type": "object",
        "additionalProperties": False,
        "required": ["name", "version"],
        "properties": {
            "name": {"type": "string"},
            "version": {"type": ["string", "number"]},
            "description": {"type": "string"},
            "extends": {"type": "array", "items": {"type": "string"}},
            "weights": {"type": "object", "additionalProperties": {"type": "number", "minimum": 0}},
            "horizon": DURATION,
            "disable": {"type": "array", "items": {"type": "string"}},
            "rules": {"type": "array", "items": {"oneOf": rule_refs}},
        },
        "$defs": defs,
        "x-top-keys": list(TOP_KEYS),
    }
