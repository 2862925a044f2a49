"""``python -m beacon``: one command line for every process and tool of Beacon."""

from __future__ import annotations

import importlib
import time
from datetime import UTC
from pathlib import Path

import typer

from beacon.core.policy import PolicyError
from beacon.core.settings import Settings, SettingsError, load_settings

cli = typer.Typer(no_args_is_help=True, add_completion=False, help="Beacon: missing-child alert service.")
schemas_cli = typer.Typer(no_args_is_help=True, help="The event contract (JSON Schemas).")
topics_cli = typer.Typer(no_args_is_help=True, help="Kafka topics.")
cli.add_typer(schemas_cli, name="schemas")
cli.add_typer(topics_cli, name="topics")
policy_cli = typer.Typer(no_args_is_help=True, help="The council's policy file (correlation rules).")
cli.add_typer(policy_cli, name="policy")


def _run_faust_worker(module: str) -> None:
    from beacon.core.faust_app import run_worker
    from beacon.core.logs import configure_logging
    from beacon.core.topics import ensure_topics

    settings: Settings = load_settings()
    configure_logging(settings.log_level)  # JSON from the first line on
    ensure_topics(settings)
    app = importlib.import_module(module).app
    run_worker(app, settings)


@cli.command()
def correlator() -> None:
    """Run the correlator worker (Faust): events in, alert records out."""
    _run_faust_worker("beacon.correlator.app")


@cli.command()
def notifier() -> None:
    """Run the notifier worker (Faust): alert records in, SMS and email out."""
    _run_faust_worker("beacon.notifier.app")


@cli.command()
def broker(port: int = typer.Option(9092, help="Loopback port to listen on.")) -> None:
    """Run the embedded Tansu broker in the foreground (memory storage only)."""
    from beacon.core.broker import EmbeddedBroker

    with EmbeddedBroker(port=port) as embedded:
        typer.echo(f"embedded broker ready on {embedded.bootstrap}; Ctrl-C stops it")
        try:
            while embedded.process is not None and embedded.process.poll() is None:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass


@topics_cli.command("create")
def topics_create() -> None:
    """Create Beacon's topics on the configured Kafka (idempotent)."""
    from beacon.core.topics import ensure_topics

    created = ensure_topics(load_settings())
    typer.echo(f"created: {', '.join(created)}" if created else "all topics exist")


@schemas_cli.command("export")
def schemas_export(directory: Path = typer.Option(None, help="Defaults to schemas/events/.")) -> None:
    """Write the JSON Schema of every event type, generated from the models."""
    from beacon.core.schemas import SCHEMA_DIR, export

    for path in export(directory or SCHEMA_DIR):
        typer.echo(str(path))


@cli.command()
def demo() -> None:
    """Produce the demo events to the configured Kafka."""
    import json

    from beacon.core.kafka import make_producer
    from beacon.core.topics import EVENTS
    from beacon.demo import demo_events

    producer = make_producer(load_settings())
    events = demo_events()
    for event in events:
        producer.send(EVENTS, key=event["subject"].encode(), value=json.dumps(event).encode())
    producer.flush()
    typer.echo(f"produced {len(events)} demo events to {EVENTS}")


@cli.command()
def dev(demo_events: bool = typer.Option(True, "--demo/--no-demo", help="Feed the demo events.")) -> None:
    """Run everything on the embedded broker (what ``make run`` does)."""
    from beacon.devrun import run

    raise typer.Exit(run(with_demo=demo_events))


# ---------------------------------------------------------------- ingest (issue 3)
apikeys_cli = typer.Typer(no_args_is_help=True, help="API keys of the HTTP ingest API (one per source).")
cli.add_typer(apikeys_cli, name="apikeys")


def _ingest_settings():  # type: ignore[no-untyped-def]
    from beacon.ingest.settings import IngestSettings

    return load_settings(IngestSettings)


@cli.command()
def ingest() -> None:
    """Run the HTTP ingest API (POST /v1/events -> Kafka)."""
    from beacon.core.topics import ensure_topics
    from beacon.ingest.app import serve

    settings = _ingest_settings()
    ensure_topics(settings)
    serve(settings)


@cli.command()
def validator() -> None:
    """Run the validator worker (Faust): raw Kafka events in, valid to the events topic, invalid to the DLQ."""
    _run_faust_worker("beacon.ingest.validator_app")


@apikeys_cli.command("create")
def apikeys_create(
    source: str = typer.Option(
        ..., help="Source name, e.g. met-police: its events must have source urn:beacon:source:<name>."
    ),
    scope: str = typer.Option(..., help="Scope: which event types the key may send (police, council)."),
) -> None:
    """Create a key. The key is printed once and never stored (only its hash)."""
    from beacon.ingest.apikeys import ApiKeyStore, KeyStoreError

    settings = _ingest_settings()
    try:
        key, token = ApiKeyStore(settings.ingest_api_keys_file).create(source, scope, settings.ingest_scopes)
    except KeyStoreError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"key id: {key.key_id}  source: {key.source}  scope: {key.scope}", err=True)
    typer.echo("the key (shown once; store it now):", err=True)
    typer.echo(token)


@apikeys_cli.command("revoke")
def apikeys_revoke(key_id: str = typer.Argument(..., help="The key id (see `apikeys list`).")) -> None:
    """Revoke a key: the running service refuses it from the next request on."""
    from beacon.ingest.apikeys import ApiKeyStore, KeyStoreError

    try:
        key = ApiKeyStore(_ingest_settings().ingest_api_keys_file).revoke(key_id)
    except KeyStoreError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"revoked {key.key_id} ({key.source}) at {key.revoked_at}")


@apikeys_cli.command("list")
def apikeys_list() -> None:
    """List keys (ids, sources, scopes, state; never the keys themselves)."""
    from beacon.ingest.apikeys import ApiKeyStore

    for key in ApiKeyStore(_ingest_settings().ingest_api_keys_file).list():
        state = f"revoked {key.revoked_at}" if key.revoked_at else "active"
        typer.echo(f"{key.key_id}  {key.source:20} {key.scope:10} created {key.created_at}  {state}")


@cli.command("import")
def import_events(
    file: Path = typer.Argument(
        ...,
        exists=True,
        dir_okay=False,
        help="Events as .jsonl (one CloudEvent per line) or .csv (envelope columns + data.<field> columns).",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only validate: write nothing to Kafka."),
    rejects: Path = typer.Option(None, help="Write refused records with their reasons here (JSONL)."),
    resume: bool = typer.Option(False, "--resume", help="Skip the lines a previous run already wrote."),
    limit: int = typer.Option(None, help="Stop after this many lines (this run)."),
    chunk: int = typer.Option(500, min=1, help="Records per acknowledged chunk (and checkpoint)."),
) -> None:
    """Bulk import / replay historical events straight to the events topic."""
    from datetime import timedelta

    from tqdm import tqdm

    from beacon.core.topics import EVENTS
    from beacon.ingest.importer import count_lines, run_import

    settings = _ingest_settings()
    producer = None
    if not dry_run:
        from kafka import KafkaProducer

        from beacon.ingest.producer import ingest_producer_config

        producer = KafkaProducer(**{**ingest_producer_config(settings), "client_id": "beacon-import"})
    try:
        with tqdm(total=count_lines(file), unit="line", desc=file.name) as progress:
            summary = run_import(
                file,
                producer=producer,
                topic=EVENTS,
                dry_run=dry_run,
                rejects=rejects,
                resume=resume,
                limit=limit,
                chunk=chunk,
                progress=progress,
                future_tolerance=timedelta(seconds=settings.ingest_future_tolerance_s),
            )
    finally:
        if producer is not None:
            producer.close(timeout=10)
    typer.echo(
        (
            "dry run, nothing written\n"
            if dry_run
            else f"written to {EVENTS}; checkpoint at line {summary.stopped_at_line}\n"
        )
        + summary.render()
    )


@schemas_cli.command("openapi")
def schemas_openapi(path: Path = typer.Option(None, help="Defaults to schemas/openapi.json.")) -> None:
    """Write the ingest API's OpenAPI document, generated from the service."""
    from beacon.ingest.openapi import OPENAPI_FILE, render_openapi

    target = path or OPENAPI_FILE
    target.write_text(render_openapi())
    typer.echo(str(target))


@policy_cli.command("check")
def policy_check(path: Path = typer.Argument(..., help="Policy YAML, e.g. deploy/policies/norfolk.yaml.")) -> None:
    """Validate a policy file and print the rules it sets (exit 2 naming the key and reason)."""
    from beacon.core.policy import load_policy

    policy = load_policy(path)
    typer.echo(f"{path}: valid policy for {policy.council}")
    repeat = policy.repeat_episodes
    typer.echo(f"  repeat episodes: {repeat.count} in {repeat.window_days} days -> {repeat.notify}")
    for step in policy.duration_ladder.steps:
        scope = " (children in care)" if step.looked_after_only else ""
        typer.echo(f"  still missing {step.after_hours:g} h{scope} -> {step.severity.value}, {step.notify}")
    typer.echo(f"  return interview due within {policy.return_interview.deadline_hours:g} h of the return")
    typer.echo(f"  CSE x missing from level {policy.cse_missing.from_level} -> {policy.cse_missing.severity.value}")
    typer.echo(f"  allowed lateness {policy.allowed_lateness_minutes:g} min")
    who = "its parties only" if policy.corrections.parties_only else "any organisation"
    typer.echo(f"  episode corrections accepted from {who}")


# ---------------------------------------------------------------- web console

console_user_cli = typer.Typer(no_args_is_help=True, help="Staff accounts of the web console.")
cli.add_typer(console_user_cli, name="console-user")


@cli.command()
def console() -> None:
    """Run the on-call web console (who is missing, open alerts, timelines, acknowledge)."""
    from beacon.console.server import run

    run()


def _console_users():  # type: ignore[no-untyped-def]
    from beacon.console.settings import ConsoleSettings
    from beacon.console.users import UserStore

    return UserStore(load_settings(ConsoleSettings).console_users_file)


@console_user_cli.command("add")
def console_user_add(name: str = typer.Argument(..., help="Staff id (not a full name).")) -> None:
    """Add a user, or set a new password. Prompts for it, or reads one line from stdin when piped."""
    import sys

    from beacon.console.users import UserError

    store = _console_users()
    if sys.stdin.isatty():
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    try:
        existed = store.exists(name)
        store.set_password(name, password)
    except UserError as exc:
        typer.echo(f"refused: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{'password changed for' if existed else 'added'} {name} in {store.path}")


@console_user_cli.command("remove")
def console_user_remove(name: str) -> None:
    """Remove a user; their open sessions stop working at once."""
    store = _console_users()
    if not store.remove(name):
        typer.echo(f"no user {name} in {store.path}", err=True)
        raise typer.Exit(1)
    typer.echo(f"removed {name}")


@console_user_cli.command("list")
def console_user_list() -> None:
    """List the user names (never the hashes)."""
    for name in sorted(_console_users().users()):
        typer.echo(name)


oncall_cli = typer.Typer(no_args_is_help=True, help="The notifier's on-call configuration.")
cli.add_typer(oncall_cli, name="oncall")


@oncall_cli.command("check")
def oncall_check(path: Path = typer.Argument(None, help="Defaults to BEACON_ONCALL_FILE.")) -> None:
    """Validate an on-call file and show who is on call now (exit status 2 if invalid)."""
    from datetime import datetime

    from beacon.notifier.oncall import OnCallConfigError, load_oncall
    from beacon.notifier.settings import NotifierSettings

    file = path or load_settings(NotifierSettings).oncall_file
    try:
        config = load_oncall(file)
    except OnCallConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    now = datetime.now(UTC)
    typer.echo(
        f"{file}: valid ({len(config.people)} people, {len(config.teams)} teams, {len(config.policies)} policies)"
    )
    for name, team in config.teams.items():
        typer.echo(
            f"  {name:20} on call now: {team.rotation.on_call(now):16} councils: {', '.join(team.councils) or '-'}"
        )


def main() -> None:
    try:
        cli()
    except SettingsError as exc:
        typer.echo(str(exc), err=True)
        raise SystemExit(2) from None
    except PolicyError as exc:
        typer.echo(str(exc), err=True)
        raise SystemExit(2) from None
