"""``python -m beacon console``: wire settings, the feed, the acked producer and uvicorn."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn

from beacon.console.app import create_app
from beacon.console.feed import Feed
from beacon.console.read_model import ReadModel
from beacon.console.settings import ConsoleSettings
from beacon.core.topics import ACKS, AUDIT, CONSOLE_NOTES, CONSOLE_SESSIONS
from beacon.runtime.acked_producer import AckedProducer
from beacon.runtime.http_server import uvicorn_config
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
    # Acks, sessions, audit and notes are awaited until Kafka holds them: the person is told
    # "sent" only then. One producer, replaced when a write went unacknowledged (a failover).
    producer = AckedProducer(settings, ACK_SEND_TIMEOUT_S, "beacon-console")

    def sender(topic: str) -> Callable[[Any], Awaitable[None]]:
        async def send(record: Any) -> None:
            await producer.write(topic, [(record.key, record.to_json(), [])])

        return send

    send_ack, send_session_record = sender(ACKS), sender(CONSOLE_SESSIONS)
    send_audit, send_note = sender(AUDIT), sender(CONSOLE_NOTES)

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
        producer.close()  # every write was awaited, so nothing is pending here


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
