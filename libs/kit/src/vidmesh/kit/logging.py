"""structlog for every service: one line per event, ``console`` for people, ``json`` for
machines; the standard library's loggers (uvicorn, aiokafka, alembic) go through it too."""

from __future__ import annotations

import logging
import sys
from typing import Literal

import structlog
from vidmesh.kit.log_redaction import redact_database_errors


def configure_logging(
    service: str,
    *,
    level: str = "info",
    log_format: Literal["console", "json"] = "console",
) -> None:
    """Route structlog and stdlib logging to stderr, each event tagged with ``service``."""
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                redact_database_errors,  # before the traceback is rendered with its messages
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiokafka reports every lost broker connection at ERROR with a traceback; one warning does.
    logging.getLogger("aiokafka").setLevel(max(root.level, logging.WARNING))
