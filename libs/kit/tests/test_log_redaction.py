"""A failing statement's values never reach the log: not SQLAlchemy's ``[parameters: ...]``,
not PostgreSQL's ``DETAIL: Key (email)=(...)``, not asyncpg's quoting of a bad argument."""

from __future__ import annotations

import json
import logging

import pytest
import structlog
from sqlalchemy import text
from vidmesh.kit.db import Database
from vidmesh.kit.logging import configure_logging

SECRET = "alice.secret@example.com"


@pytest.fixture(autouse=True)
def restore_logging() -> object:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


async def failing_statements(url: str) -> list[Exception]:
    """Three statements that fail with the secret in their parameters."""
    database = Database(url)
    errors: list[Exception] = []
    try:
        async with database.transaction() as session:
            await session.execute(text("CREATE TABLE people (email text UNIQUE)"))
            await session.execute(text("INSERT INTO people VALUES (:e)"), {"e": SECRET})
        statements = [
            ("INSERT INTO people VALUES (:e)", {"e": SECRET}),  # DETAIL: Key (email)=(...)
            ("SELECT CAST(:e AS uuid)", {"e": SECRET}),  # invalid input ... '<value>'
            ("INSERT INTO people VALUES (:e)", {"e": SECRET + "\x00"}),  # NUL in text
        ]
        for statement, values in statements:
            try:
                async with database.transaction() as session:
                    await session.execute(text(statement), values)
            except Exception as error:
                errors.append(error)
    finally:
        await database.close()
    return errors


@pytest.mark.parametrize("log_format", ["json", "console"])
async def test_a_failing_statements_values_are_not_logged(
    fresh_database: str, capsys: pytest.CaptureFixture[str], log_format: str
) -> None:
    errors = await failing_statements(fresh_database)
    assert len(errors) == 3
    assert any(SECRET in repr(error.__cause__) for error in errors)  # what would have leaked
    assert all("parameters hidden" in str(error) for error in errors)  # hide_parameters
    configure_logging("user", log_format=log_format)  # type: ignore[arg-type]
    logger = structlog.get_logger("test")
    for error in errors:
        logger.error("handler_failed", exc_info=error)
        try:
            raise RuntimeError("wrapped") from error
        except RuntimeError:
            logging.getLogger("stdlib").exception("stdlib_failed")
    logged = capsys.readouterr().err
    assert SECRET not in logged
    assert "alice.secret" not in logged
    assert "statement='INSERT INTO people VALUES ($1)'" in logged
    assert "sqlstate=23505" in logged
    assert "constraint_name=people_email_key" in logged
    if log_format == "json":
        lines = [json.loads(line) for line in logged.strip().splitlines()]
        assert [line["event"] for line in lines] == ["handler_failed", "stdlib_failed"] * 3
        assert all("Traceback" in line["exception"] for line in lines)


def test_other_exceptions_keep_their_message(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("user", log_format="json")
    try:
        raise ValueError("a plain bug")
    except ValueError:
        structlog.get_logger("test").exception("failed")
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert "ValueError: a plain bug" in line["exception"]
