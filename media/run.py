"""``run_media(config)``: the media server's entry point (``vidare media``, ``python -m media``)."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import structlog

if TYPE_CHECKING:
    from vidare.config import Config

__all__ = ["run_media", "settings_from_config"]


def settings_from_config(config: Config) -> object:
    from media.server import MediaSettings

    media = config.address("media", "address")
    b2bua = config.address("sip", "listen")
    return MediaSettings(
        host=media.host,
        port=media.port,
        rtp_port_start=int(config.get("media", "rtp_port_start")),
        var_dir=config.var_dir,
        database_url=config.database_url,
        domain=str(config.get("sip", "domain")),
        b2bua=(b2bua.host, b2bua.port),
        max_message_seconds=float(config.get("media", "max_message_seconds")),
        queue_max_wait=float(config.get("media", "queue_max_wait")),
        pj_log_level=int(os.environ.get("VIDARE_MEDIA_PJ_LOG", "1")),
    )


def _pjsip_console_to_stderr() -> None:
    """pjlib prints its console log with C stdio on fd 1, some of it before any of its settings
    apply: point fd 1 at stderr and keep our JSON lines on the original stdout (a new fd)."""
    sys.stdout.flush()
    json_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = os.fdopen(json_fd, "w", buffering=1)


def run_media(config: Config) -> int:
    """Run the media server in this process until SIGTERM/SIGINT; returns the exit status."""
    from sipcore.aio.logconfig import configure_logging

    _pjsip_console_to_stderr()
    configure_logging(config.get("log", "format"), config.get("log", "level"))
    from media.server import MediaServer, MediaSettings

    settings = settings_from_config(config)
    assert isinstance(settings, MediaSettings)
    config.var_dir.mkdir(parents=True, exist_ok=True)
    try:
        return MediaServer(settings).run()
    except Exception as e:  # pj.Error (e.g. the port is taken) carries its text in .info()
        info = getattr(e, "info", None)
        text = info() if callable(info) else str(e)
        structlog.get_logger("media.server").error("media.failed", error=str(text))
        return 1
