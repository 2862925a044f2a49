"""``python -m beacon``: one command line for every process and tool of Beacon."""

from __future__ import annotations

import importlib
import time
from pathlib import Path

import typer

from beacon.core.settings import SettingsError, load_settings

cli = typer.Typer(no_args_is_help=True, add_completion=False, help="Beacon: missing-child alert service.")
schemas_cli = typer.Typer(no_args_is_help=True, help="The event contract (JSON Schemas).")
topics_cli = typer.Typer(no_args_is_help=True, help="Kafka topics.")
cli.add_typer(schemas_cli, name="schemas")
cli.add_typer(topics_cli, name="topics")


def _run_faust_worker(module: str) -> None:
    from faust.worker import Worker

    from beacon.core.topics import ensure_topics

    settings = load_settings()
    ensure_topics(settings)
    app = importlib.import_module(module).app
    Worker(app, loglevel=settings.log_level.lower()).execute_from_commandline()


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


def main() -> None:
    try:
        cli()
    except SettingsError as exc:
        typer.echo(str(exc), err=True)
        raise SystemExit(2) from None


oncall_cli = typer.Typer(no_args_is_help=True, help="The notifier's on-call configuration.")
cli.add_typer(oncall_cli, name="oncall")


@oncall_cli.command("check")
def oncall_check(path: Path = typer.Argument(None, help="Defaults to BEACON_ONCALL_FILE.")) -> None:
    """Validate an on-call file and show who is on call now (exit status 2 if invalid)."""
    from datetime import datetime, timezone

    from beacon.notifier.oncall import OnCallConfigError, load_oncall
    from beacon.notifier.settings import NotifierSettings

    file = path or load_settings(NotifierSettings).oncall_file
    try:
        config = load_oncall(file)
    except OnCallConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    now = datetime.now(timezone.utc)
    typer.echo(f"{file}: valid ({len(config.people)} people, {len(config.teams)} teams, "
               f"{len(config.policies)} policies)")
    for name, team in config.teams.items():
        typer.echo(f"  {name:20} on call now: {team.rotation.on_call(now):16} councils: {', '.join(team.councils) or '-'}")
