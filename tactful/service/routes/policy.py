"""The active policy: read it, validate a draft, adopt a new version, see the history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from tactful.policy.document import Policy
from tactful.policy.errors import PolicyError
from tactful.service.deps import AdminKey, ReadKey, RuntimeDep
from tactful.service.schemas import ErrorOut, Responses, Strict

router = APIRouter(prefix="/v1/policy", tags=["policy"])
ERRORS: Responses = {401: {"model": ErrorOut}, 403: {"model": ErrorOut}}


class PolicyIn(Strict):
    text: str = Field(min_length=1, max_length=1_000_000, description="The policy YAML.")
    author: str | None = Field(default=None, max_length=200)


class RuleOut(BaseModel):
    id: str
    kind: str
    mode: str
    message: str
    summary: str
    scope: dict[str, Any]
    cite: str | None = None


class PolicyOut(BaseModel):
    name: str
    version: str
    description: str
    extends: list[str]
    weights: dict[str, float]
    rules: list[RuleOut]
    text: str


class ValidationOut(BaseModel):
    valid: bool
    name: str | None = None
    version: str | None = None
    rules: int | None = None
    errors: list[dict[str, Any]] = Field(default_factory=list)


class VersionOut(BaseModel):
    name: str
    version: str
    author: str | None
    created_at: datetime
    active: bool


def render(policy: Policy) -> PolicyOut:
    return PolicyOut(
        name=policy.name,
        version=policy.version,
        description=policy.description,
        extends=list(policy.extends),
        weights=policy.weights,
        rules=[
            RuleOut(
                id=r.id,
                kind=r.kind,
                mode=r.effective_mode,
                message=r.message,
                summary=r.describe(),
                scope=r.scope.model_dump(exclude_defaults=True),
                cite=r.cite,
            )
            for r in policy.rules
        ],
        text=policy.text,
    )


@router.get("", response_model=PolicyOut, responses=ERRORS, summary="The active policy")
def get_policy(runtime: RuntimeDep, key: ReadKey) -> PolicyOut:
    return render(runtime.policy)


@router.put(
    "",
    response_model=PolicyOut,
    responses={**ERRORS, 422: {"model": ErrorOut, "description": "Invalid; old policy serves."}},
    summary="Adopt a new policy version",
)
def put_policy(body: PolicyIn, runtime: RuntimeDep, key: AdminKey) -> PolicyOut:
    """Validate and adopt. An invalid policy is refused with every error's line and field,
    and the current policy keeps serving."""
    return render(runtime.adopt(body.text, author=body.author or key.name or key.key_id))


@router.post("/validate", response_model=ValidationOut, responses=ERRORS, summary="Check a draft")
def validate_policy(body: PolicyIn, runtime: RuntimeDep, key: ReadKey) -> ValidationOut:
    try:
        policy = Policy.from_text(body.text, "<draft>")
    except PolicyError as exc:
        return ValidationOut(valid=False, errors=exc.as_list())
    return ValidationOut(
        valid=True, name=policy.name, version=policy.version, rules=len(policy.rules)
    )


@router.get("/history", response_model=list[VersionOut], responses=ERRORS, summary="Versions")
def history(runtime: RuntimeDep, key: ReadKey) -> list[VersionOut]:
    return [
        VersionOut(
            name=v.name,
            version=v.version,
            author=v.author,
            created_at=v.created_at,
            active=v.active,
        )
        for v in runtime.store.policy_history()
    ]
