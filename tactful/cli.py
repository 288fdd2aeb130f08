"""The `tactful` command: serve, keys, decide, policy, demo."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from tactful.policy.document import Policy, pack_names, read_policy
from tactful.policy.errors import PolicyError
from tactful.service.config import DEFAULT_DATABASE_URL

app = typer.Typer(
    help="tactful: ask before you reach out. A contact-policy engine with one ledger.",
    no_args_is_help=True,
    add_completion=False,
)
keys_app = typer.Typer(help="API keys: create, list, revoke.", no_args_is_help=True)
policy_app = typer.Typer(help="Policies: check, show, schema.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(policy_app, name="policy")

out = Console()
err = Console(stderr=True)

DatabaseUrl = Annotated[
    str,
    typer.Option(
        "--database-url",
        envvar="TACTFUL_DATABASE_URL",
        help="Where the ledger lives: sqlite:///path (default ./tactful.db) or "
        "postgresql://user@host:5432/db.",
    ),
]
SCOPES = ("decide", "ingest", "read", "admin")


def _open(url: str):  # type: ignore[no-untyped-def]
    from tactful.store import open_store
    from tactful.store.base import StoreError

    try:
        return open_store(url)
    except (StoreError, ValueError) as exc:
        err.print(f"[red]Cannot open the store {url!r}:[/red] {exc}")
        raise typer.Exit(2) from None


# -- serve ---------------------------------------------------------------------------------


@app.command()
def serve(
    database_url: DatabaseUrl = DEFAULT_DATABASE_URL,
    policy: Annotated[
        str, typer.Option(help="Policy to start with when the store has none: pack or file.")
    ] = "courtesy",
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    demo: Annotated[
        bool, typer.Option(help="Load the demo customers (once) and print a key to try the API.")
    ] = False,
    workers: Annotated[int, typer.Option(help="Worker processes.", min=1)] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Run the HTTP service (OpenAPI docs at /docs)."""
    import os

    import uvicorn

    try:
        read_policy(policy)
    except PolicyError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    store = _open(database_url)
    if demo:
        from tactful.demo import load_demo

        summary = load_demo(store, policy=policy)
        _, secret = store.create_key(["admin"], name="demo", now=datetime.now(UTC))
        out.print(f"Demo data: {summary}")
        out.print("A demo admin key (shown once):")
        out.print(secret, soft_wrap=True)
    store.close()
    os.environ["TACTFUL_DATABASE_URL"] = database_url
    os.environ["TACTFUL_POLICY"] = policy
    os.environ["TACTFUL_HOST"] = host
    os.environ["TACTFUL_PORT"] = str(port)
    # A long-running service: keep the collector's full passes short (see service/heap.py).
    os.environ.setdefault("TACTFUL_GC_FREEZE_SECONDS", "1")
    out.print(f"tactful on http://{host}:{port}  (API docs: http://{host}:{port}/docs)")
    uvicorn.run(
        "tactful.service.asgi:app",
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        access_log=False,
    )


# -- keys ----------------------------------------------------------------------------------


@keys_app.command("create")
def keys_create(
    scope: Annotated[
        list[str],
        typer.Option(
            "--scope", help=f"A scope to grant (repeat for several): {', '.join(SCOPES)}."
        ),
    ],
    name: Annotated[Optional[str], typer.Option(help="A label: who or what uses it.")] = None,  # noqa: UP045
    database_url: DatabaseUrl = DEFAULT_DATABASE_URL,
) -> None:
    """Create an API key. The key is printed once, alone on the last line; only its hash is
    stored."""
    bad = [s for s in scope if s not in SCOPES]
    if bad:
        err.print(f"[red]Unknown scope {', '.join(bad)}[/red] (scopes: {', '.join(SCOPES)})")
        raise typer.Exit(2)
    store = _open(database_url)
    try:
        key, secret = store.create_key(scope, name=name, now=datetime.now(UTC))
    finally:
        store.close()
    out.print(
        f"Created key {key.key_id} with scopes {', '.join(sorted(key.scopes))}. "
        "Store it now: it is not shown again."
    )
    print(secret)


@keys_app.command("list")
def keys_list(database_url: DatabaseUrl = DEFAULT_DATABASE_URL) -> None:
    """List API keys (ids, names, scopes; never the secrets)."""
    store = _open(database_url)
    try:
        table = Table("id", "name", "scopes", "created", "revoked")
        for k in store.list_keys():
            table.add_row(
                k.key_id,
                k.name or "",
                " ".join(sorted(k.scopes)),
                k.created_at.strftime("%Y-%m-%d %H:%M"),
                "yes" if k.revoked else "",
            )
        out.print(table)
    finally:
        store.close()


@keys_app.command("revoke")
def keys_revoke(key_id: str, database_url: DatabaseUrl = DEFAULT_DATABASE_URL) -> None:
    """Revoke an API key by id."""
    from tactful.store.base import NotFound

    store = _open(database_url)
    try:
        store.revoke_key(key_id)
    except NotFound:
        err.print(f"[red]No key {key_id!r}[/red]")
        raise typer.Exit(1) from None
    finally:
        store.close()
    out.print(f"Revoked {key_id}.")


# -- decide --------------------------------------------------------------------------------


@app.command()
def decide(
    customer_id: Annotated[str, typer.Argument(help="The customer's id.")],
    channel: Annotated[str, typer.Argument(help="email, sms, call, push, in_app, chat, ...")],
    purpose: Annotated[str, typer.Argument(help="transactional, service, marketing, sales, ...")],
    at: Annotated[
        str | None, typer.Option(help="When the contact would happen (ISO 8601).")
    ] = None,
    trigger: Annotated[Optional[str], typer.Option(help="The event that prompted it.")] = None,  # noqa: UP045
    offer: Annotated[Optional[str], typer.Option()] = None,  # noqa: UP045
    source: Annotated[Optional[str], typer.Option(help="Team or rep.")] = None,  # noqa: UP045
    subject: Annotated[Optional[str], typer.Option()] = None,  # noqa: UP045
    body: Annotated[Optional[str], typer.Option()] = None,  # noqa: UP045
    hold: Annotated[
        bool, typer.Option(help="Place a hold on allow (--no-hold: a dry run).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the decision as JSON.")] = False,
    database_url: DatabaseUrl = DEFAULT_DATABASE_URL,
    policy: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="Decide under this pack or file instead of the store's active policy."),
    ] = None,
) -> None:
    """Decide one proposal against the store's ledger and print the answer with reasons."""
    from tactful.durations import parse_datetime
    from tactful.model import ContactProposal, Content, Trigger
    from tactful.service.config import Settings
    from tactful.service.runtime import Runtime

    store = _open(database_url)
    try:
        runtime = Runtime(Settings(database_url=database_url), store)
        if policy:
            runtime.policy = _load_policy(policy)
        proposal = ContactProposal(
            customer_id,
            channel,
            purpose,
            at=parse_datetime(at) if at else None,
            trigger=Trigger(trigger) if trigger else None,
            offer=offer,
            source=source,
            content=Content(subject=subject, body=body) if subject or body else None,
        )
        decision, _ = runtime.decide(proposal, hold=hold)
    finally:
        store.close()
    if as_json:
        print(json.dumps(decision.as_dict(), indent=2))
        return
    colour = {"allow": "green", "defer": "yellow", "deny": "red"}[decision.verdict.value]
    line = f"[bold {colour}]{decision.verdict.value.upper()}[/]"
    if decision.not_before:
        line += f" until {decision.not_before.isoformat()}"
    out.print(line + f"  (policy {decision.policy.name} v{decision.policy.version})")
    for r in decision.reasons:
        until = f"  [dim]until {r.until.isoformat()}[/]" if r.until else ""
        out.print(f"  • [bold]{r.rule}[/] ({r.kind}): {r.message}{until}")
    for f in decision.flags:
        out.print(f"  ⚑ [bold]{f.rule}[/]: {f.message}")


# -- policy --------------------------------------------------------------------------------


def _load_policy(ref: str) -> Policy:
    try:
        return Policy.load(ref)
    except PolicyError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None


@policy_app.command("check")
def policy_check(
    files: Annotated[list[str], typer.Argument(help="Policy files (or pack names) to validate.")],
) -> None:
    """Validate policies; every error names its file, line and field. Exit 1 if any fail."""
    failed = False
    for ref in files:
        try:
            p = Policy.load(ref)
        except PolicyError as exc:
            failed = True
            for line in exc.render().splitlines():
                err.print(f"[red]{line}[/red]", highlight=False)
            continue
        out.print(f"[green]ok[/green] {ref}: {p.name} v{p.version}, {len(p.rules)} rules")
    if failed:
        raise typer.Exit(1)


@policy_app.command("show")
def policy_show(
    ref: Annotated[
        str, typer.Argument(help=f"A pack ({', '.join(pack_names())}) or a file.")
    ] = "courtesy",
) -> None:
    """Print a policy readably: each rule, what it does, its scope, mode and source."""
    p = _load_policy(ref)
    out = Console()  # sized now, for the terminal (or COLUMNS) this command runs in
    out.print(
        f"[bold]{p.name}[/bold] v{p.version}" + (f" — {p.description}" if p.description else "")
    )
    if p.extends:
        out.print(f"extends: {', '.join(p.extends)}")
    if p.weights:
        out.print("weights: " + ", ".join(f"{k} {v:g}" for k, v in p.weights.items()))
    table = Table("rule", "kind", "mode", "applies to", "what it does", "source", show_lines=True)
    for r in p.rules:
        scope = r.scope.model_dump(exclude_defaults=True)
        scope_text = "; ".join(
            f"{k}: {', '.join(v) if isinstance(v, tuple | list) else v}" for k, v in scope.items()
        )
        table.add_row(
            r.id,
            r.kind,
            r.effective_mode,
            scope_text or "everything",
            f"{r.describe()}\n[dim]{r.message}[/dim]",
            r.cite or "",
        )
    out.print(table)


@policy_app.command("schema")
def policy_schema() -> None:
    """Print the JSON Schema of the policy language (for editor validation)."""
    from tactful.policy.schema import policy_json_schema

    print(json.dumps(policy_json_schema(), indent=2))


# -- demo ----------------------------------------------------------------------------------


@app.command()
def demo(
    database_url: DatabaseUrl = DEFAULT_DATABASE_URL,
    policy: Annotated[str, typer.Option(help="Policy for the demo decisions.")] = "courtesy",
) -> None:
    """Load synthetic customers who live through the seed stories, and show what tactful
    decided for each."""
    from tactful.demo import load_demo, tour

    store = _open(database_url)
    try:
        summary = load_demo(store, policy=policy)
        out.print(f"Loaded: {summary}")
        tour(store, out)
    finally:
        store.close()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
