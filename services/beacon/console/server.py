"""``python -m beacon console``: wire settings, the feed, the ack producer and uvicorn."""

from __future__ import annotations

import asyncio
import logging

import structlog
import uvicorn

from beacon.console.app import create_app
from beacon.console.feed import Feed
from beacon.console.settings import ConsoleSettings
from beacon.core.acks import AckCommand
from beacon.core.kafka import make_producer
from beacon.core.logs import configure_logging
from beacon.core.settings import load_settings
from beacon.core.topics import ACKS, ensure_topics

log = structlog.get_logger(service="console")  # lazy: takes the JSON config set at start-up
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

    if not settings.console_users_file.exists():
        log.warning("console_no_users", hint="add one with: python -m beacon console-user add NAME")
    app = create_app(settings, Feed(settings), send_ack)
    log.info("console_listening", url=f"http://{settings.bind_host}:{settings.console_port}/")
    try:
        uvicorn.run(app, host=settings.bind_host, port=settings.console_port, log_level="warning",
                    access_log=False, timeout_graceful_shutdown=3, proxy_headers=False)
    finally:
        producer.close(timeout=5)
