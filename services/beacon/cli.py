"""``python -m beacon``: one command line for every process and tool of Beacon."""

from __future__ import annotations

import importlib
import time
from datetime import UTC
from pathlib import Path
from typing import NoReturn

import typer

from beacon.core.policy import PolicyError
from beacon.runtime.settings import Settings, SettingsError, load_settings

cli = typer.Typer(no_args_is_help=True, add_completion=False, help="Beacon: missing-child alert service.")
schemas_cli = typer.Typer(no_args_is_help=True, help="The event contract (JSON Schemas).")
topics_cli = typer.Typer(no_args_is_help=True, help="Kafka topics.")
cli.add_typer(schemas_cli, name="schemas")
cli.add_typer(topics_cli, name="topics")
policy_cli = typer.Typer(no_args_is_help=True, help="The council's policy file (correlation rules).")
cli.add_typer(policy_cli, name="policy")


def _run_faust_worker(module: str, settings_cls: type[Settings]) -> None:
    from beacon.runtime.faust_app import run_worker
    from beacon.runtime.logs import configure_logging
    from beacon.runtime.topic_admin import ensure_topics

    # The worker's own settings first: a missing secret stops it before it touches Kafka.
    settings: Settings = load_settings(settings_cls)
    configure_logging(settings.log_level)  # JSON from the first line on
    ensure_topics(settings)
    app = importlib.import_module(module).app
    run_worker(app, settings)


@cli.command()
def correlator() -> None:
    """Run the correlator worker (Faust): events in, alert records out."""
    from beacon.correlator.settings import CorrelatorSettings

    _run_faust_worker("beacon.correlator.app", CorrelatorSettings)


@cli.command()
def notifier() -> None:
    """Run the notifier worker (Faust): alert records in, SMS and email out."""
    from beacon.notifier.settings import NotifierSettings

    _run_faust_worker("beacon.notifier.app", NotifierSettings)


@cli.command()
def broker(port: int = typer.Option(9092, help="Loopback port to listen on.")) -> None:
    """Run the embedded Tansu broker in the foreground (memory storage only)."""
    import signal

    from beacon.runtime.broker import EmbeddedBroker

    # SIGTERM (systemd, Kubernetes, `kill`) stops it as Ctrl-C does: through the `with`,
    # which stops the broker's process group. Python's default would exit at once and
    # leave the broker running on its port.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with EmbeddedBroker(port=port) as embedded:
        typer.echo(f"embedded broker ready on {embedded.bootstrap}; Ctrl-C or SIGTERM stops it")
        try:
            while embedded.process is not None and embedded.process.poll() is None:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass


@cli.command()
def routes(
    service: str = typer.Argument(..., help="ingest, validator, correlator, notifier or console."),
) -> None:
    """Print every HTTP route SERVICE serves (method and path), read from its router."""
    from beacon.routes import service_routes

    try:
        found = service_routes(service)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    for method, path in found:
        typer.echo(f"{method} {path}")


@topics_cli.command("create")
def topics_create() -> None:
    """Create Beacon's topics on the configured Kafka (idempotent)."""
    from kafka.errors import KafkaError

    from beacon.runtime.logs import configure_logging
    from beacon.runtime.topic_admin import ensure_topics

    settings: Settings = load_settings()
    configure_logging(settings.log_level)  # the client's reasons (refused login, untrusted certificate) are logged
    try:
        created = ensure_topics(settings)
    except KafkaError as exc:
        typer.echo(
            f"error: could not create the topics on {settings.kafka_bootstrap_servers} "
            f"({settings.kafka_security_protocol}): {type(exc).__name__}; the client's log lines give the reason",
            err=True,
        )
        raise typer.Exit(1) from None
    typer.echo(f"created: {', '.join(created)}" if created else "all topics exist")


@topics_cli.command("doc")
def topics_doc(
    write: bool = typer.Option(False, "--write", help="Rewrite the table in the README instead of printing it."),
    readme: Path = typer.Option(None, help="Defaults to the project's README.md."),
) -> None:
    """The table of every topic (what it holds, kind, cleanup policy, retention, schema), from core/topics.py."""
    from beacon.runtime import topics_doc as doc
    from beacon.runtime.readme_tables import MarkersMissing

    try:
        if write:
            target = readme or doc.README
            changed = doc.write_readme(target)
            typer.echo(f"{target}: {'topics table regenerated' if changed else 'topics table up to date'}")
        else:
            typer.echo(doc.topics_table(), nl=False)
    except MarkersMissing as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


@schemas_cli.command("export")
def schemas_export(
    directory: Path = typer.Option(None, help="Defaults to schemas/ (events/ and records/ in it)."),
) -> None:
    """Write the JSON Schema of every event type and of every topic's records, generated from the models."""
    from beacon.core import record_schemas, schemas

    root = directory or schemas.SCHEMA_DIR.parent
    for path in [*schemas.export(root / "events"), *record_schemas.export(root / "records")]:
        typer.echo(str(path))


settings_cli = typer.Typer(no_args_is_help=True, help="Beacon's settings (BEACON_* variables).")
cli.add_typer(settings_cli, name="settings")


@settings_cli.command("doc")
def settings_doc(
    write: bool = typer.Option(False, "--write", help="Rewrite the table in the README instead of printing it."),
    readme: Path = typer.Option(None, help="Defaults to the project's README.md."),
) -> None:
    """The table of every setting (variable, type, default, who accepts it, meaning), from the models."""
    from beacon import settings_doc as doc
    from beacon.runtime.readme_tables import MarkersMissing

    try:
        if write:
            target = readme or doc.README
            changed = doc.write_readme(target)
            typer.echo(f"{target}: {'settings table regenerated' if changed else 'settings table up to date'}")
        else:
            typer.echo(doc.settings_table(), nl=False)
    except (doc.DescriptionMissing, MarkersMissing) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


@cli.command()
def demo() -> None:
    """Produce the demo events to the configured Kafka."""
    import json

    from beacon.core.topics import EVENTS
    from beacon.demo import demo_events
    from beacon.runtime.kafka import make_producer

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


def _kafka_refused(settings: Settings, exc: Exception, consequence: str) -> NoReturn:
    typer.echo(
        f"refused: Kafka ({settings.kafka_bootstrap_servers}) did not answer for the API-keys topic "
        f"({type(exc).__name__}); {consequence}, try again",
        err=True,
    )
    raise typer.Exit(1) from None


@cli.command()
def ingest() -> None:
    """Run the HTTP ingest API (POST /v1/events -> Kafka)."""
    from beacon.ingest.app import serve
    from beacon.runtime.topic_admin import ensure_topics

    settings = _ingest_settings()
    ensure_topics(settings)
    serve(settings)


@cli.command()
def validator() -> None:
    """Run the validator worker (Faust): raw Kafka events in, valid to the events topic, invalid to the DLQ."""
    from beacon.ingest.settings import IngestSettings

    _run_faust_worker("beacon.ingest.validator_app", IngestSettings)


@apikeys_cli.command("create")
def apikeys_create(
    source: str = typer.Option(
        ..., help="Source name, e.g. met-police: its events must have source urn:beacon:source:<name>."
    ),
    scope: str = typer.Option(..., help="Scope: which event types the key may send (police, council)."),
) -> None:
    """Create a key. The key is printed once and never stored (only its hash)."""
    from beacon.ingest.apikey_topic import ApiKeyStore
    from beacon.ingest.apikeys import KeyStoreError

    settings = _ingest_settings()
    try:
        key, token = ApiKeyStore(settings).create(source, scope, settings.ingest_scopes)
    except KeyStoreError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except Exception as exc:  # noqa: BLE001 - any Kafka failure: say so, nothing was created
        _kafka_refused(settings, exc, "no key was created")
    typer.echo(f"key id: {key.key_id}  source: {key.source}  scope: {key.scope}", err=True)
    typer.echo("the key (shown once; store it now):", err=True)
    typer.echo(token)


@apikeys_cli.command("revoke")
def apikeys_revoke(key_id: str = typer.Argument(..., help="The key id (see `apikeys list`).")) -> None:
    """Revoke a key: every running ingest replica refuses it within a second (README, "API keys")."""
    from beacon.ingest.apikey_topic import ApiKeyStore
    from beacon.ingest.apikeys import KeyStoreError

    settings = _ingest_settings()
    try:
        key = ApiKeyStore(settings).revoke(key_id)
    except KeyStoreError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except Exception as exc:  # noqa: BLE001 - any Kafka failure: say so; the key may still be active
        _kafka_refused(settings, exc, "the key is NOT revoked")
    typer.echo(f"revoked {key.key_id} ({key.source}) at {key.revoked_at}")


@apikeys_cli.command("list")
def apikeys_list() -> None:
    """List keys (ids, sources, scopes, state; never the keys themselves)."""
    from beacon.ingest.apikey_topic import ApiKeyStore

    settings = _ingest_settings()
    try:
        keys = ApiKeyStore(settings).list()
    except Exception as exc:  # noqa: BLE001 - any Kafka failure: say so
        _kafka_refused(settings, exc, "nothing to list")
    for key in keys:
        state = f"revoked {key.revoked_at}" if key.revoked_at else "active"
        typer.echo(f"{key.key_id}  {key.source:20} {key.scope:10} created {key.created_at}  {state}")


@cli.command("pseudonym")
def pseudonym_of(
    references: list[str] = typer.Argument(None, help="Source references (child or episode)."),
    episode: bool = typer.Option(False, "--episode", help="The references are episode references."),
    find: str = typer.Option(
        None, "--find", help="Beacon's reference to look for: reads candidate source references from stdin."
    ),
) -> None:
    """Beacon's reference of a source reference under BEACON_INGEST_PSEUDONYM_KEY, or (--find)
    which of the source references on stdin a Beacon reference stands for."""
    import sys

    from beacon.ingest.references import pseudonym

    key = _ingest_settings().ingest_pseudonym_key.get_secret_value()
    if not key:
        typer.echo("BEACON_INGEST_PSEUDONYM_KEY is not set: Beacon keeps the source's references as they are", err=True)
        raise typer.Exit(2)
    kind = "episode" if episode else "subject"
    if find is not None:
        candidates = (line.strip() for line in sys.stdin)
        matches = [ref for ref in candidates if ref and pseudonym(key.encode(), kind, ref) == find]
        for ref in matches:
            typer.echo(ref)
        raise typer.Exit(0 if matches else 1)
    for ref in references or []:
        typer.echo(f"{ref}\t{pseudonym(key.encode(), kind, ref)}")


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
    """Bulk import / replay historical events to the history topic (read after live events, never ahead of them)."""
    from tqdm import tqdm

    from beacon.core.topics import EVENTS_HISTORY
    from beacon.ingest.decisions import ContractRules
    from beacon.ingest.importer import count_lines, run_import

    settings = _ingest_settings()
    producer = None
    if not dry_run:
        from kafka import KafkaProducer

        from beacon.runtime.acked_producer import acked_producer_config

        producer = KafkaProducer(**acked_producer_config(settings, settings.ingest_kafka_timeout_s, "beacon-import"))
    try:
        with tqdm(total=count_lines(file), unit="line", desc=file.name) as progress:
            summary = run_import(
                file,
                producer=producer,
                topic=EVENTS_HISTORY,
                dry_run=dry_run,
                rejects=rejects,
                resume=resume,
                limit=limit,
                chunk=chunk,
                progress=progress,
                rules=ContractRules.from_settings(settings),
            )
    finally:
        if producer is not None:
            producer.close(timeout=10)
    typer.echo(
        (
            "dry run, nothing written\n"
            if dry_run
            else f"written to {EVENTS_HISTORY}; checkpoint at line {summary.stopped_at_line}\n"
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


def _console_user_settings():  # type: ignore[no-untyped-def]
    from beacon.console.settings import ConsoleUsersSettings

    return load_settings(ConsoleUsersSettings)


def _read_console_users():  # type: ignore[no-untyped-def]
    """Every console user as the consoles see them: beacon.console.users read to its end."""
    from kafka import KafkaConsumer, TopicPartition

    from beacon.console.users import UserDirectory
    from beacon.core.console_users import ConsoleUserRecord
    from beacon.core.topics import CONSOLE_USERS, TOPICS
    from beacon.runtime.decoding import Rejected, safe_decode
    from beacon.runtime.topic_admin import ensure_topics

    settings = _console_user_settings()
    directory = UserDirectory()
    try:
        ensure_topics(settings, tuple(t for t in TOPICS if t.name == CONSOLE_USERS))
        consumer = KafkaConsumer(
            bootstrap_servers=settings.bootstrap_servers, enable_auto_commit=False, consumer_timeout_ms=2000
        )
        try:
            partitions = [
                TopicPartition(CONSOLE_USERS, p) for p in sorted(consumer.partitions_for_topic(CONSOLE_USERS) or ())
            ]
            consumer.assign(partitions)
            consumer.seek_to_beginning(*partitions)
            end = consumer.end_offsets(partitions)
            while any(consumer.position(tp) < end[tp] for tp in partitions):
                for records in consumer.poll(timeout_ms=1000).values():
                    for record in records:
                        decoded = safe_decode(record.value, ConsoleUserRecord.from_json)
                        if not isinstance(decoded, Rejected):
                            directory.apply(decoded)
        finally:
            consumer.close()
    except Exception as exc:  # noqa: BLE001 - any failure: say so
        typer.echo(f"refused: cannot read {CONSOLE_USERS} from Kafka ({type(exc).__name__})", err=True)
        raise typer.Exit(1) from None
    return directory


def _write_console_records(records: list[tuple[str, bytes, bytes]]) -> None:
    """Write (topic, key, value) records in order, each acknowledged before the next, so a
    failure leaves the later ones unwritten; exit 1 if Kafka does not take one."""
    from beacon.core.topics import CONSOLE_SESSIONS, CONSOLE_USERS, TOPICS
    from beacon.runtime.kafka import make_producer
    from beacon.runtime.topic_admin import ensure_topics

    settings = _console_user_settings()
    try:
        ensure_topics(settings, tuple(t for t in TOPICS if t.name in (CONSOLE_SESSIONS, CONSOLE_USERS)))
        producer = make_producer(settings, request_timeout_ms=10_000, max_block_ms=10_000)
        try:
            for topic, key, value in records:
                producer.send(topic, key=key, value=value).get(timeout=10)
        finally:
            producer.close(timeout=5)
    except Exception as exc:  # noqa: BLE001 - any failure: say so, change nothing more
        typer.echo(
            f"refused: Kafka ({settings.kafka_bootstrap_servers}) did not take the record that tells every "
            f"console ({type(exc).__name__}); try again",
            err=True,
        )
        raise typer.Exit(1) from None


def _session_record(kind: str, name: str, reason: str) -> tuple[str, bytes, bytes]:
    from beacon.console.sessions import SessionRecord
    from beacon.core.topics import CONSOLE_SESSIONS

    record = SessionRecord(kind=kind, subject=name, at=time.time(), reason=reason)  # type: ignore[arg-type]
    return (CONSOLE_SESSIONS, record.key, record.to_json())


@console_user_cli.command("add")
def console_user_add(
    name: str = typer.Argument(..., help="Staff id (not a full name)."),
    org: list[str] = typer.Option(
        ..., "--org", help="An organisation slug the user works for (repeat for several), e.g. southwark."
    ),
    role: str = typer.Option("viewer", help="viewer, responder (acknowledge), coordinator or admin."),
) -> None:
    """Add a user, or replace one's password, organisations and role (which ends the user's
    sessions on every console). Prompts for the password, or reads one line from stdin when piped."""
    import sys

    from beacon.console.users import UserError, user_set_record
    from beacon.core.topics import CONSOLE_USERS

    if sys.stdin.isatty():
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    try:
        record = user_set_record(name, password, org, role, time.time())
    except UserError as exc:
        typer.echo(f"refused: {exc}", err=True)
        raise typer.Exit(1) from None
    # The sessions end first: a failure leaves the old account and its sessions as they were.
    _write_console_records(
        [
            _session_record("user_sessions_ended", name, "password_changed"),
            (CONSOLE_USERS, record.key, record.to_json()),
        ]
    )
    typer.echo(f"set {name}: {role} of {', '.join(record.organisations)} (on {CONSOLE_USERS}, every console)")


@console_user_cli.command("remove")
def console_user_remove(name: str) -> None:
    """Remove a user; their open sessions stop working at once, on every console."""
    from beacon.core.console_users import ConsoleUserRecord
    from beacon.core.topics import CONSOLE_USERS

    if not _read_console_users().exists(name):
        typer.echo(f"no user {name} on {CONSOLE_USERS}", err=True)
        raise typer.Exit(1)
    record = ConsoleUserRecord(kind="user_removed", name=name, at=time.time())
    _write_console_records(
        [_session_record("user_sessions_ended", name, "removed"), (CONSOLE_USERS, record.key, record.to_json())]
    )
    typer.echo(f"removed {name}")


@console_user_cli.command("unlock")
def console_user_unlock(name: str) -> None:
    """Lift the lockout of NAME (after too many failed logins), on every console."""
    from beacon.console.users import UserError, check_user_name

    try:
        check_user_name(name)
    except UserError as exc:
        typer.echo(f"refused: {exc}", err=True)
        raise typer.Exit(1) from None
    _write_console_records([_session_record("user_unlocked", name, "admin")])
    typer.echo(f"unlocked {name}")


@console_user_cli.command("list")
def console_user_list() -> None:
    """List the users with their role and organisations (never the hashes)."""
    for user in sorted(_read_console_users().users.values(), key=lambda u: u.name):
        typer.echo(f"{user.name}\t{user.principal.role.name}\t{','.join(sorted(user.principal.organisations))}")


oncall_cli = typer.Typer(no_args_is_help=True, help="The notifier's on-call configuration.")
cli.add_typer(oncall_cli, name="oncall")


@oncall_cli.command("check")
def oncall_check(path: Path = typer.Argument(None, help="Defaults to BEACON_ONCALL_FILE.")) -> None:
    """Validate an on-call file and show who is on call now (exit status 2 if invalid)."""
    from datetime import datetime

    from beacon.notifier.oncall import OnCallConfigError, load_oncall
    from beacon.notifier.settings import OnCallFileSettings

    file = path or load_settings(OnCallFileSettings).oncall_file
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


# Long-running services: what they write is read by a log shipper, so even a refusal to
# start is one JSON line; the operator tools answer a person, in text.
SERVICE_COMMANDS = frozenset({"ingest", "validator", "correlator", "notifier", "console"})


def _refuse_to_start(reason: str) -> None:
    import json
    import sys
    from datetime import datetime

    if len(sys.argv) > 1 and sys.argv[1] in SERVICE_COMMANDS:
        line = {
            "event": "refused_to_start",
            "level": "critical",
            "logger": "beacon.cli",
            "service": sys.argv[1],
            "reason": reason,
            "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        }
        typer.echo(json.dumps(line), err=True)
    else:
        typer.echo(reason, err=True)
    raise SystemExit(2)


def main() -> None:
    import os

    from beacon.registry import check_config_file

    try:
        check_config_file(os.environ.get("BEACON_CONFIG_FILE"))  # before any service reads its share
        cli()
    except (SettingsError, PolicyError) as exc:
        _refuse_to_start(str(exc))
