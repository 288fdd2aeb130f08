"""The policy language: YAML documents of rules, validated with file, line and field."""

from tactful.policy.document import Policy, pack_names
from tactful.policy.errors import PolicyError

__all__ = ["Policy", "PolicyError", "pack_names"]
