"""The `tactful` command: serve, keys, decide, policy, replay, demo."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
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
    workers: Annotated[
        int,
        typer.Option(
            help="Worker processes. PostgreSQL: about one per core. SQLite: 1 is fastest "
            "(every process writes to the one file in turn).",
            min=1,
        ),
    ] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    worker: Annotated[
        bool,
        typer.Option(
            help="Run the deferred-delivery loops (queue releases, call-back reminders, "
            "webhook deliveries) in each process; --no-worker leaves them to `tactful worker`."
        ),
    ] = True,
) -> None:
    """Run the HTTP service (OpenAPI docs at /docs)."""
    import os

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
    os.environ["TACTFUL_WORKER"] = "1" if worker else "0"
    out.print(f"tactful on http://{host}:{port}  (API docs: http://{host}:{port}/docs)")
    from tactful.service import workers as processes

    # With several workers, each on a socket of its own (see service/workers.py).
    processes.run(
        "tactful.service.asgi:app",
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        access_log=False,
    )


@app.command("worker")
def worker_command(
    database_url: DatabaseUrl = DEFAULT_DATABASE_URL,
    policy: Annotated[
        str, typer.Option(help="Policy to start with when the store has none: pack or file.")
    ] = "courtesy",
    once: Annotated[
        bool, typer.Option(help="Work until nothing is due, then exit (else run until stopped).")
    ] = False,
    name: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="This worker's name in claims and delivery attempts."),
    ] = None,
) -> None:
    """Run the deferred-delivery loops alone: release queued proposals, fire call-back
    reminders, deliver webhooks. Run several at once for larger deployments (settings:
    TACTFUL_WORKER_* environment variables)."""
    import signal
    import threading

    from tactful.service.config import Settings
    from tactful.service.runtime import Runtime
    from tactful.worker import Worker

    store = _open(database_url)
    try:
        settings = Settings(database_url=database_url, policy=policy)
        runtime = Runtime(settings, store)
        w = Worker(runtime, name=name, follow_policy=True)
        if once:
            t = w.run_until_idle()
            out.print(
                f"released {t.released}, deferred {t.deferred}, dropped {t.dropped}, "
                f"reminders fired {t.fired}, delivered {t.delivered}, failed {t.failed}"
            )
            return
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        err.print(f"tactful worker {w.name} on {database_url}")
        w.run(stop)
    finally:
        store.close()


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
    log: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            help="Instead: write a synthetic quarter of contacts and events to this folder "
            "(contacts, events, customers) for `tactful replay`.",
        ),
    ] = None,
    customers: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(help="With --log: how many customers (default 1,000).", min=1),
    ] = None,
    rows: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(
            help="With --log: as many customers as it takes to reach this many rows.", min=1
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="With --log: the random seed.")] = 1,
    log_format: Annotated[
        str, typer.Option("--format", help="With --log: parquet or csv.")
    ] = "parquet",
) -> None:
    """Load synthetic customers who live through the seed stories, and show what tactful
    decided for each. With --log, write a synthetic contact and event log instead."""
    if log is not None:
        _demo_log(log, customers, rows, seed, log_format)
        return
    from tactful.demo import load_demo, tour

    store = _open(database_url)
    try:
        summary = load_demo(store, policy=policy)
        out.print(f"Loaded: {summary}")
        tour(store, out)
    finally:
        store.close()


def _demo_log(folder: Path, customers: int | None, rows: int | None, seed: int, fmt: str) -> None:
    from tactful.replay.synthetic import write_log

    if fmt not in ("parquet", "csv"):
        err.print(f"[red]--format {fmt!r}: expected parquet or csv[/red]")
        raise typer.Exit(2)
    if customers is None and rows is None:
        customers = 1000
    with err.status("Writing the synthetic log..."):
        files = write_log(folder, customers=customers, rows=rows, seed=seed, fmt=fmt)  # type: ignore[arg-type]
    share = files.n_contacts / files.rows if files.rows else 0.0
    out.print(
        f"Wrote {files.rows:,} rows for {files.n_customers:,} customers "
        f"({files.n_events:,} events, {files.n_contacts:,} contacts, {share:.0%} contacts):"
    )
    for path in (files.contacts, files.events, files.customers):
        out.print(f"  {path}")
    out.print(
        f"Replay it: tactful replay --contacts {files.contacts} --events {files.events} "
        f"--customers {files.customers} --policy courtesy --out replay-out"
    )


# -- replay --------------------------------------------------------------------------------


@app.command()
def replay(
    contacts: Annotated[
        Path,
        typer.Option(
            help="The contact log (CSV or Parquet): customer_id, at, channel, "
            "purpose, and optionally trigger, offer, campaign, source, outcome, "
            "subject, body, flags, discount, priority, tags (a JSON object, e.g. "
            '{"account": "A1"}, which a rule counting per tags.account reads).'
        ),
    ],
    policy: Annotated[str, typer.Option(help="The policy to replay through: pack or file.")],
    events: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            help="The event log (CSV or Parquet): customer_id, at, event, and any "
            "property columns (session_id, offer, ...) or a JSON `properties`."
        ),
    ] = None,
    compare: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="A second policy to replay side by side (pack or file)."),
    ] = None,
    customers: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            help="Profiles (CSV or Parquet): customer_id, timezone, country, "
            "subdivision, phones (;-separated). Without: local time is UTC."
        ),
    ] = None,
    out_dir: Annotated[
        Path,
        typer.Option(
            "--out",
            help="Folder for verdicts (Parquet, CSV; customer by customer, each one's contacts"
            " in time order, `row` their row in the log) and report.html.",
        ),
    ] = Path("replay-out"),
    engine: Annotated[
        str, typer.Option(help="local (processes on this machine) or spark (PySpark).")
    ] = "local",
    mapping: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(
            "--map",
            help="Column names in your files: at=timestamp,customer_id=user_id"
            " (contacts.at=sent_at for one file). Repeatable.",
        ),
    ] = None,
    strict: Annotated[
        bool, typer.Option(help="Stop at bad rows instead of leaving them out (and listing them).")
    ] = False,
    workers: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(
            help="Local engine: workers, threads where the replay kernel folds every policy,"
            " else processes (default: one per core).",
            min=1,
        ),
    ] = None,
    progress: Annotated[
        Optional[bool],  # noqa: UP045
        typer.Option(help="Show a progress bar (default: on a terminal)."),
    ] = None,
    report: Annotated[bool, typer.Option(help="Write report.html.")] = True,
) -> None:
    """Replay a history of contacts and events through a policy: which contacts it would
    have stopped, whom it would have protected, and what it would have cost."""
    from tactful.replay.io import InputError, parse_mapping, rows_in_words
    from tactful.replay.local import keep_freed_memory, progress_bar
    from tactful.replay.run import replay as run_replay

    if engine not in ("local", "spark"):
        err.print(f"[red]--engine {engine!r}: expected local or spark[/red]")
        raise typer.Exit(2)
    chosen = _load_policy(policy)
    second = _load_policy(compare) if compare else None
    show = err.is_terminal if progress is None else progress
    keep_freed_memory()
    bar = progress_bar(err, disable=not show)
    task = bar.add_task("replay", total=None)
    try:
        with bar:
            result = run_replay(
                contacts,
                events,
                chosen,
                compare=second,
                customers=customers,
                mapping=parse_mapping(mapping or []),
                strict=strict,
                out=out_dir,
                engine=engine,  # type: ignore[arg-type]
                workers=workers,
                on_loaded=lambda log: bar.update(task, total=log.rows),
                on_rows=lambda n: bar.advance(task, n),
                report=report,
            )
    except InputError as exc:
        for line in str(exc).splitlines():
            # Not wrapped: a line names file, row and column, and must stay greppable.
            err.print(f"[red]{line}[/red]", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    log = result.log
    total = result.total_seconds
    rate = result.rows / total if total else 0.0
    out.print(
        f"Replayed {rows_in_words(result.rows)} ({log.contacts:,} contact and {log.events:,} event "
        f"rows read) for {log.customers:,} customers in {total:.1f} s ({rate:,.0f} rows/s, "
        f"{engine}: read {result.read_seconds:.1f} s, fold {result.seconds:.1f} s, write "
        f"{result.write_seconds:.1f} s)."
    )
    if log.bad_rows:
        err.print(
            f"[yellow]{rows_in_words(len(log.bad_rows), 'bad ')} left out[/yellow] (listed in "
            f"{out_dir / 'bad-rows.csv'}; --strict stops at them):",
            soft_wrap=True,
        )
        for b in log.bad_rows[:10]:
            err.print(f"  {b}", highlight=False, soft_wrap=True)
        if len(log.bad_rows) > 10:
            err.print(f"  ... and {len(log.bad_rows) - 10:,} more")
    table = Table("policy", "contacts", "allowed", "deferred", "denied")
    for run, p in enumerate(result.policies):
        c = result.counts(run)
        table.add_row(
            f"{p.name} v{p.version}",
            f"{sum(c.values()):,}",
            f"{c['allow']:,}",
            f"{c['defer']:,}",
            f"{c['deny']:,}",
        )
    out.print(table)
    if engine == "local":
        from tactful.replay.native import path_taken

        for p in result.policies:
            out.print(f"  {p.name} v{p.version}: {path_taken(p)}", highlight=False, soft_wrap=True)
    for name, path in result.files.items():
        out.print(f"  {name}: {path}")
    for path in result.removed:
        out.print(
            f"  removed, from an earlier replay into {path.parent}: {path.name}",
            highlight=False,
            soft_wrap=True,
        )


# -- audience ------------------------------------------------------------------------------

audience_app = typer.Typer(
    help="Audiences: check one proposal for many customers.", no_args_is_help=True
)
app.add_typer(audience_app, name="audience")


def _audience_ids(path: Path) -> list[str]:
    """Ids from a file: one per line, or a CSV with a `customer_id` column."""
    from tactful.audience.ids import IdsFileError, read_ids

    try:
        return read_ids(path)
    except IdsFileError as exc:
        err.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(2) from None


@audience_app.command("check")
def audience_check(
    ids_file: Annotated[
        Path, typer.Argument(help="Customer ids, one per line (or CSV with customer_id).")
    ],
    channel: Annotated[str, typer.Option(help="email, sms, call, push, ...")],
    purpose: Annotated[str, typer.Option(help="marketing, sales, service, ...")],
    campaign: Annotated[Optional[str], typer.Option()] = None,  # noqa: UP045
    source: Annotated[Optional[str], typer.Option(help="Team or rep.")] = None,  # noqa: UP045
    offer: Annotated[Optional[str], typer.Option()] = None,  # noqa: UP045
    at: Annotated[
        Optional[str], typer.Option(help="When it would be sent (ISO 8601).")  # noqa: UP045
    ] = None,
    hold: Annotated[
        bool, typer.Option(help="Hold every allowed customer, as single decisions would.")
    ] = False,
    out_file: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--out", help="Write per-customer lines: .csv or .ndjson."),
    ] = None,
    database_url: DatabaseUrl = DEFAULT_DATABASE_URL,
    policy: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="Check under this pack or file instead of the store's active policy."),
    ] = None,
) -> None:
    """Who may receive this now, who later (and when), who never, and why."""
    import csv
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from tactful.durations import parse_datetime
    from tactful.model import ContactProposal, Decision, Verdict
    from tactful.service.config import Settings
    from tactful.service.identity import address_check
    from tactful.service.runtime import ERASED, Runtime
    from tactful.state import CustomerState
    from tactful.store.audience import Summary, check_store

    if not ids_file.is_file():
        err.print(f"[red]{ids_file}: no such file[/red]")
        raise typer.Exit(2)
    if out_file is not None and out_file.suffix not in (".csv", ".ndjson", ".jsonl"):
        err.print("[red]--out: name a .csv or .ndjson file[/red]")
        raise typer.Exit(2)
    try:
        when = parse_datetime(at) if at else None
    except ValueError as exc:
        err.print(f"[red]--at: {exc}[/red]")
        raise typer.Exit(2) from None
    ids = _audience_ids(ids_file)
    template = ContactProposal(
        "",
        channel,
        purpose,
        at=when,
        offer=offer,
        campaign=campaign,
        source=source,
    )
    store = _open(database_url)
    summary = Summary()
    try:
        runtime = Runtime(Settings(database_url=database_url), store)
        if policy:
            runtime.policy = _load_policy(policy)
        pol = runtime.policy

        def erased(state: CustomerState, p: ContactProposal, now: datetime) -> Decision:
            return Decision(Verdict.DENY, (ERASED,), pol.ref, max(now, p.at) if p.at else now)

        def held(p: ContactProposal) -> Decision:
            return runtime.decide(p, hold=True)[0]

        lines = check_store(
            store,
            ids,
            template,
            pol,
            runtime.clock,
            if_suppressed=erased,
            address_check=address_check,
            hold=held if hold else None,
            summary=summary,
        )
        sink = out_file.open("w", encoding="utf-8", newline="") if out_file else None
        writer = None
        if sink is not None and out_file is not None and out_file.suffix == ".csv":
            writer = csv.writer(sink)
            writer.writerow(
                ["customer_id", "verdict", "not_before", "rules", "reasons", "decision_id"]
            )
        started = time.perf_counter()
        with Progress(
            TextColumn("checking"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            console=err,
        ) as progress:
            task = progress.add_task("check", total=len(ids), rate="")
            for n, line in enumerate(lines, 1):
                if writer is not None:
                    writer.writerow(
                        [
                            line.customer_id,
                            line.verdict.value,
                            line.not_before.isoformat() if line.not_before else "",
                            " ".join(r.rule for r in line.reasons),
                            " | ".join(r.message for r in line.reasons),
                            line.decision_id or "",
                        ]
                    )
                elif sink is not None:
                    sink.write(json.dumps(line.as_dict()) + "\n")
                if n % 2000 == 0 or n == len(ids):
                    rate = n / max(time.perf_counter() - started, 1e-9)
                    progress.update(task, completed=n, rate=f"{rate:,.0f} customers/s")
        if sink is not None:
            sink.close()
        elapsed = time.perf_counter() - started
    finally:
        store.close()
    title = f"{len(ids):,} customers, {channel} {purpose}, policy {pol.name} v{pol.version}"
    table = Table(title=title)
    table.add_column("verdict")
    table.add_column("customers", justify="right")
    for verdict in ("allow", "defer", "deny"):
        table.add_row(verdict, f"{summary.counts[verdict]:,}")
    out.print(table)
    if summary.by_rule:
        rules = Table(title="held back by rule")
        rules.add_column("rule")
        rules.add_column("customers", justify="right")
        for rule_id, count in summary.by_rule.most_common():
            rules.add_row(rule_id, f"{count:,}")
        out.print(rules)
    paths = ", ".join(f"{k} {v:,}" for k, v in summary.paths.items())
    out.print(f"{elapsed:.2f} s ({len(ids) / max(elapsed, 1e-9):,.0f} customers/s); {paths}")
    if out_file is not None:
        out.print(f"  lines: {out_file}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
