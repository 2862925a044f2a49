"""``python -m beacon console``: wire settings, the feed, the ack producer and uvicorn."""

from __future__ import annotations

import asyncio
import logging

import uvicorn

from beacon.console.app import create_app
from beacon.console.feed import Feed
from beacon.console.read_model import ReadModel
from beacon.console.sessions import SessionRecord
from beacon.console.settings import ConsoleSettings
from beacon.core.acks import AckCommand
from beacon.core.audit import AuditRecord
from beacon.core.notes import NoteRecord
from beacon.core.topics import ACKS, AUDIT, CONSOLE_NOTES, CONSOLE_SESSIONS
from beacon.runtime.http_server import uvicorn_config
from beacon.runtime.kafka import make_producer
from beacon.runtime.logs import configure_logging, get_logger, logging_config
from beacon.runtime.settings import load_settings
from beacon.runtime.topic_admin import ensure_topics

log = get_logger("console")
ACK_SEND_TIMEOUT_S = 10.0


def run() -> None:
    settings = load_settings(ConsoleSettings)
    configure_logging(settings.log_level)
    for chatty in ("kafka", "aiokafka"):  # client connection chatter drowns the console's own JSON lines
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.getLevelName(settings.log_level)))
    ensure_topics(settings)
    producer = make_producer(settings)

    def _send_blocking(command: AckCommand) -> None:
        # acks=all and wait: the person is told "sent" only once Kafka has the command.
        producer.send(ACKS, key=command.key, value=command.to_json()).get(timeout=ACK_SEND_TIMEOUT_S)

    async def send_ack(command: AckCommand) -> None:
        await asyncio.to_thread(_send_blocking, command)

    def _send_session_blocking(record: SessionRecord) -> None:
        producer.send(CONSOLE_SESSIONS, key=record.key, value=record.to_json()).get(timeout=ACK_SEND_TIMEOUT_S)

    async def send_session_record(record: SessionRecord) -> None:
        await asyncio.to_thread(_send_session_blocking, record)

    def _send_audit_blocking(record: AuditRecord) -> None:
        producer.send(AUDIT, key=record.key, value=record.to_json()).get(timeout=ACK_SEND_TIMEOUT_S)

    async def send_audit(record: AuditRecord) -> None:
        await asyncio.to_thread(_send_audit_blocking, record)

    def _send_note_blocking(note: NoteRecord) -> None:
        producer.send(CONSOLE_NOTES, key=note.key, value=note.to_json()).get(timeout=ACK_SEND_TIMEOUT_S)

    async def send_note(note: NoteRecord) -> None:
        await asyncio.to_thread(_send_note_blocking, note)

    feed = Feed(settings, ReadModel(settings.read_model_file, settings.console_read_model_cache_entries))
    app = create_app(settings, feed, send_ack, send_session_record, send_audit, send_note)
    config = uvicorn_config(
        app,
        settings,
        settings.console_port,
        log_level="warning",
        log_config=logging_config(settings.log_level),  # uvicorn's own lines as JSON too
        access_log=False,
        timeout_graceful_shutdown=5,
        proxy_headers=False,
    )
    log.info("console_listening", url=f"http://{settings.bind_host}:{settings.console_port}/")
    try:
        ConsoleServer(config, feed).run()
    finally:
        producer.close(timeout=5)  # every ack was awaited, so nothing is pending here


class ConsoleServer(uvicorn.Server):
    """Ends the live (Server-Sent Events) streams as soon as a stop is asked for; uvicorn
    would otherwise wait for those never-ending responses until its graceful timeout."""

    def __init__(self, config: uvicorn.Config, feed: Feed):
        super().__init__(config)
        self.feed = feed
        self._loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets=None) -> None:  # type: ignore[no-untyped-def]
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame) -> None:  # type: ignore[no-untyped-def]
        if self._loop is not None:  # a signal handler: hand over to the event loop's thread
            self._loop.call_soon_threadsafe(self.feed.close_streams)
        super().handle_exit(sig, frame)
