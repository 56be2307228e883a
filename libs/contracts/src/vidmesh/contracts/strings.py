"""The string types of every contract: each capped at its column's length, and the free-text
ones (emails, titles, file names, ids) refusing control characters.

PostgreSQL's ``text`` cannot hold NUL (a statement with one fails, a 5xx before this), and no
title, email, file name or id has a use for the other C0 and C1 controls (tabs and newlines
included): they are refused where the value enters, with a message, by pydantic. The gateway's
HTTP bodies use the same types, so a value the gateway accepts is one the services accept.
"""

from __future__ import annotations

import re
from typing import Annotated, Final

from pydantic import AfterValidator, StringConstraints

MAX_ID_LENGTH: Final = 64
"""Ids are UUIDs (36); the columns that hold them are ``varchar(64)``."""
MAX_EVENT_ID_LENGTH: Final = 255
MAX_EMAIL_LENGTH: Final = 254
"""RFC 5321's longest forward path; the users table's ``email`` column."""
MAX_PASSWORD_LENGTH: Final = 128
MIN_TITLE_LENGTH: Final = 2
MAX_TITLE_LENGTH: Final = 100
MAX_FILENAME_LENGTH: Final = 255
MAX_EXTENSION_LENGTH: Final = 16
MAX_MIMETYPE_LENGTH: Final = 255
MAX_ETAG_LENGTH: Final = 64
MAX_URL_LENGTH: Final = 8192
"""Presigned URLs (answers only): a long query string, well under any server's limit."""

_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def refuse_control_characters(value: str) -> str:
    """``value`` unchanged; ValueError if it holds a C0 or C1 control character (NUL...)."""
    found = _CONTROL.search(value)
    if found is not None:
        raise ValueError(f"must not contain control characters (found U+{ord(found[0]):04X})")
    return value


NoControl: Final = AfterValidator(refuse_control_characters)

Id = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH), NoControl]
EventId = Annotated[str, StringConstraints(min_length=1, max_length=MAX_EVENT_ID_LENGTH), NoControl]
Email = Annotated[str, StringConstraints(min_length=3, max_length=MAX_EMAIL_LENGTH), NoControl]
Password = Annotated[str, StringConstraints(min_length=1, max_length=MAX_PASSWORD_LENGTH)]
"""Any character: a password is only hashed, never stored or shown."""
Title = Annotated[
    str, StringConstraints(min_length=MIN_TITLE_LENGTH, max_length=MAX_TITLE_LENGTH), NoControl
]
FileName = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_FILENAME_LENGTH), NoControl
]
Extension = Annotated[str, StringConstraints(max_length=MAX_EXTENSION_LENGTH), NoControl]
MimetypeText = Annotated[str, StringConstraints(max_length=MAX_MIMETYPE_LENGTH), NoControl]
"""A declared media type (the tutorial's ``mimetype``, ignored: types are sniffed)."""
Etag = Annotated[str, StringConstraints(max_length=MAX_ETAG_LENGTH)]
Url = Annotated[str, StringConstraints(max_length=MAX_URL_LENGTH)]
