"""Logs are one line per event, JSON when asked, tagged with the service."""

from __future__ import annotations

import json
import logging

import pytest
import structlog
from vidmesh.kit.logging import configure_logging


@pytest.fixture(autouse=True)
def restore_logging() -> object:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


def test_json_logs_carry_the_service_and_the_event(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("video", log_format="json")
    structlog.get_logger("test").info("video_uploaded", size=3)
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["event"] == "video_uploaded"
    assert line["service"] == "video"
    assert line["size"] == 3


def test_stdlib_loggers_go_through_the_same_renderer(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("user", log_format="json")
    logging.getLogger("uvicorn.error").warning("port busy")
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["event"] == "port busy"
    assert line["service"] == "user"
