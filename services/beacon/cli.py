"""``python -m beacon``: one command line for every process and tool of Beacon."""

from __future__ import annotations

import importlib
import time
from pathlib import Path

import typer

from beacon.core.policy import PolicyError
from beacon.core.settings import SettingsError, load_settings

cli = typer.Typer(no_args_is_help=True, add_completion=False, help="Beacon: missing-child alert service.")
schemas_cli = typer.Typer(no_args_is_help=True, help="The event contract (JSON Schemas).")
topics_cli = typer.Typer(no_args_is_help=True, help="Kafka topics.")
cli.add_typer(schemas_cli, name="schemas")
cli.add_typer(topics_cli, name="topics")
policy_cli = typer.Typer(no_args_is_help=True, help="The council's policy file (correlation rules).")
cli.add_typer(policy_cli, name="policy")


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


def main() -> None:
    try:
        cli()
    except SettingsError as exc:
        typer.echo(str(exc), err=True)
        raise SystemExit(2) from None
    except PolicyError as exc:
        typer.echo(str(exc), err=True)
        raise SystemExit(2) from None
