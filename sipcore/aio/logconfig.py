"""structlog, configured once per process (STYLE item 24).

JSON lines (orjson) when stdout is not a terminal, the console renderer when it is. Events carry
the context bound with ``structlog.contextvars`` (``call_id``, ``user``) plus whatever the logger
was bound with. Our own events never go through stdlib ``logging``.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal

import orjson
import structlog

__all__ = ["LogFormat", "configure_logging"]

LogFormat = Literal["auto", "json", "console"]

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}


def _orjson_dumps(obj: Any, **_: Any) -> bytes:
    # default=str keeps datetimes, enums and paths printable without a custom encoder.
    return orjson.dumps(obj, default=str)


def configure_logging(fmt: LogFormat = "auto", level: str = "info", *, cache: bool = True) -> None:
    """Configure structlog for this process. ``cache=False`` in tests (capture_logs needs it)."""
    json_lines = fmt == "json" or (fmt == "auto" and not sys.stdout.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.format_exc_info,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if json_lines:
        structlog.configure(
            processors=[*shared, structlog.processors.JSONRenderer(serializer=_orjson_dumps)],
            wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
            logger_factory=structlog.BytesLoggerFactory(sys.stdout.buffer),
            cache_logger_on_first_use=cache,
        )
    else:
        structlog.configure(
            processors=[*shared, structlog.dev.ConsoleRenderer()],
            wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
            logger_factory=structlog.PrintLoggerFactory(sys.stdout),
            cache_logger_on_first_use=cache,
        )
    # Libraries that use stdlib logging (uvicorn, alembic, sqlalchemy) stay quiet unless warning.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(name)s: %(message)s")
