"""Every setting of the service in one place (environment variables `TACTFUL_*`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///./tactful.db"


class Settings(BaseSettings):
    """Service settings; each field can be set as `TACTFUL_<NAME>` in the environment."""

    model_config = SettingsConfigDict(env_prefix="TACTFUL_", extra="ignore")

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        description="sqlite:///path (default ./tactful.db) or postgresql://user@host/db",
    )
    policy: str = Field(
        default="courtesy",
        description="Policy used when the store has none yet: a pack name or a YAML file.",
    )
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str | None = Field(
        default=None,
        description="Base URL customers reach (for unsubscribe links); default http://host:port.",
    )
    hold_ttl_seconds: float = Field(default=15 * 60, gt=0, description="Unconfirmed holds expire.")
    link_ttl_days: float = Field(
        default=60, gt=0, description="How long unsubscribe and preference links stay valid."
    )
    transactional_when_store_down: Literal["deny", "allow"] = Field(
        default="deny",
        description="When the store is unreachable, non-transactional decisions fail closed "
        "(503); transactional ones follow this setting.",
    )
    audience_dir: Path | None = Field(
        default=None,
        description="A directory of audience files (ids one per line, or CSV with "
        "customer_id) that `POST /v1/audiences/check` may name as `file`; unset, file "
        "references are refused and ids must be sent in the request.",
    )
    state_cache_size: int = Field(
        default=20_000,
        ge=0,
        description="Customers whose folded ledger each process keeps between decisions "
        "(checked against the customer's version on every use; 0 turns it off).",
    )
    gc_freeze_seconds: float = Field(
        default=0.0,
        ge=0,
        description="Move the objects that survived this long out of the garbage collector's "
        "sight (gc.freeze), so that its full passes stay short; `tactful serve` uses 1 s, "
        "0 leaves the collector as it is.",
    )
    store_threads: int = Field(
        default=0,
        ge=0,
        le=64,
        description="Worker threads per process that run the store work of decisions; 0 runs "
        "it on the event loop (fastest when the store answers in well under a millisecond).",
    )
    decide_thread: bool | None = Field(
        default=None,
        description="Run each group of decisions (group commit, docs/scaling.md) in a thread "
        "of the process's own, so the event loop reads and answers other requests while the "
        "group's transaction waits on the database, and the next group gathers meanwhile; "
        "unset: on where the store is a database server (PostgreSQL), off for SQLite, whose "
        "statements do not wait (on the loop it decides more per CPU second). Not used with "
        "store threads.",
    )
    decide_fast_path: bool = Field(
        default=True,
        description="Answer a valid, authorised `POST /v1/decisions` without FastAPI's routing "
        "and dependencies (service/fastpath.py; same answer, about a third less CPU); "
        "false sends every request through the route.",
    )
    sendgrid_verification_key: str | None = Field(
        default=None, description="SendGrid's signed-webhook public key (base64 or PEM)."
    )
    twilio_auth_token: str | None = Field(
        default=None, description="Twilio auth token, to verify X-Twilio-Signature."
    )
    sendgrid_group_purposes: dict[str, str] = Field(
        default_factory=dict,
        description="SendGrid unsubscribe group id -> purpose (default: marketing).",
    )

    worker: bool = Field(
        default=False,
        description="Run the deferred-delivery loops (queue releases, call-back reminders, "
        "webhook deliveries) in this process; `tactful serve` turns it on unless --no-worker.",
    )
    worker_poll_seconds: float = Field(
        default=1.0, gt=0, description="How often an idle worker looks for due work."
    )
    worker_batch: int = Field(
        default=50, ge=1, le=10_000, description="Customers (or deliveries) per claim."
    )
    worker_lease_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How long claimed work stays a worker's; a worker that dies leaves it "
        "to the others after this.",
    )
    worker_http_timeout: float = Field(
        default=10.0, gt=0, description="Timeout of one webhook POST, in seconds."
    )
    worker_retry_base_seconds: float = Field(
        default=30.0, gt=0, description="First wait after a failed delivery (then doubling)."
    )
    worker_retry_cap_seconds: float = Field(
        default=3600.0, gt=0, description="Longest wait between two delivery attempts."
    )
    worker_give_up_hours: float = Field(
        default=72.0,
        gt=0,
        description="A delivery still failing this long after it was made "
        "is given up (dead; redeliver by hand).",
    )
    callback_owner: str = Field(
        default="sales",
        min_length=1,
        description="Team that owns call-back reminders whose request names no `source`.",
    )

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")
