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
    from beacon.core.faust_app import run_worker
    from beacon.core.logs import configure_logging
    from beacon.core.topics import ensure_topics

    settings = load_settings()
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


def main() -> None:
    try:
        cli()
    except SettingsError as exc:
        typer.echo(str(exc), err=True)
        raise SystemExit(2) from None


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
