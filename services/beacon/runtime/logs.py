"""Structured logs: JSON, one event per line. Log ids (alert, event, episode refs are
pseudonymous) and outcomes, never message bodies, names, or free text from events.

Both structlog loggers (``get_logger``) and the standard library's loggers (Faust, mode,
aiokafka, kafka-python, uvicorn) go through one stdout handler whose formatter renders
JSON, so a log shipper reads every line of every Beacon process the same way.

HTTP services: call ``configure_logging(level)`` first and start uvicorn with
``log_config=logging_config(level)`` (uvicorn otherwise installs its own text handlers).
"""

from __future__ import annotations

import logging
import logging.config
import sys
import threading
from types import TracebackType
from typing import Any

import structlog

# Keys whose values could carry a payload, a message body or personal data. Dropped from
# structlog events before rendering, whoever passes them: a safety net, not a licence.
REDACTED_KEYS = frozenset({"payload", "body", "value", "data", "message_body", "name", "address", "text"})


def _drop_sensitive_keys(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    for key in REDACTED_KEYS.intersection(event_dict):
        event_dict[key] = "[redacted]"
    return event_dict


# Applied to every line, whether it came from structlog or from a stdlib logger.
_SHARED_PROCESSORS: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
]


def logging_config(level: str = "INFO") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` dict: root logger -> stdout -> JSON. Also given to
    Faust's Worker (``logging_config=``) so mode does not install its coloured handler."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {
                "()": structlog.stdlib.ProcessorFormatter,
                "foreign_pre_chain": _SHARED_PROCESSORS,
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    _drop_sensitive_keys,
                    structlog.processors.format_exc_info,
                    # One line per event: newlines inside messages (Faust's tables) are escaped.
                    structlog.processors.JSONRenderer(),
                ],
            }
        },
        "handlers": {
            "stdout": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"},
        },
        "root": {"level": level, "handlers": ["stdout"]},
        "loggers": {
            # Chatty at INFO and never about Beacon's own state.
            "kafka": {"level": "WARNING"},
            "aiokafka": {"level": "WARNING"},
            # ~11 INFO lines per SMS with the account SID in the URL; the notifier logs one line per send.
            "twilio": {"level": "WARNING"},
        },
    }


def _log_uncaught(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    if issubclass(exc_type, KeyboardInterrupt):
        sys.__excepthook__(exc_type, exc, tb)
        return
    logging.getLogger("beacon").critical("uncaught exception", exc_info=(exc_type, exc, tb))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit or args.exc_value is None:
        return
    logging.getLogger("beacon").critical(
        "uncaught exception in thread", exc_info=(args.exc_type, args.exc_value, args.exc_traceback)
    )


def configure_logging(level: str = "INFO") -> None:
    logging.config.dictConfig(logging_config(level))
    logging.captureWarnings(True)  # warnings go through the JSON handler, not bare to stderr
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_SHARED_PROCESSORS,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        wrapper_class=structlog.stdlib.BoundLogger,
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )


def get_logger(service: str) -> Any:
    # Initial values, not .bind(): bind() would resolve the lazy proxy now, at import
    # time, before configure_logging() has installed the JSON pipeline.
    return structlog.get_logger(f"beacon.{service}", service=service)
