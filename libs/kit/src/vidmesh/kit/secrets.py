"""The one check of secret settings: known placeholders and short or repetitive keys are refused
at start, with a message that names the setting and never the value.

Used by the settings classes (a pydantic validator raises ``ValueError(secret_problem(...))``);
``ServiceSettings`` hides inputs in its errors, so a refused value is never printed.
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import urlsplit

PLACEHOLDER_WORDS: Final = re.compile(
    r"change[-_ ]?me|replace[-_ ]?me|placeholder|your[-_ ]?(secret|password|key)|"
    r"example|dummy",
    re.IGNORECASE,
)
"""Words of a value someone was meant to replace (every value of deploy/.env.example has one)."""

PLACEHOLDER_VALUES: Final = frozenset(
    {"secret", "password", "passw0rd", "admin", "root", "test", "default", "key", "token"}
)
"""Whole values (ignoring case, digits and punctuation) that are placeholders, not keys."""

MIN_DISTINCT_CHARACTERS: Final = 8
"""Fewer different characters than this is a repeated pattern (``aaaa...``, ``abab...``)."""


def secret_problem(value: str, *, min_length: int = 0) -> str | None:
    """Why ``value`` is unfit for a secret (None: fit). Never quotes the value."""
    if PLACEHOLDER_WORDS.search(value):
        return "is a placeholder (replace it with a random value)"
    if re.sub(r"[\W\d_]+", "", value).lower() in PLACEHOLDER_VALUES:
        return "is a well-known placeholder (replace it with a random value)"
    if len(value) < min_length:
        return f"is shorter than {min_length} characters"
    if min_length and len(set(value)) < MIN_DISTINCT_CHARACTERS:
        return "repeats a few characters (use a random value)"
    return None


def check_secret(value: str, *, min_length: int = 0) -> str:
    """``value`` when fit; else ``ValueError`` saying why (a pydantic validator's body)."""
    problem = secret_problem(value, min_length=min_length)
    if problem is not None:
        raise ValueError(f"the value {problem}")
    return value


def check_url_password(url: str) -> str:
    """``url`` when the password in it (if any) is not a placeholder; else ``ValueError``.
    Only placeholders: a database password's length is the operator's business."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return url  # not a URL we can read: the driver will say so
    if password:
        problem = secret_problem(password)
        if problem is not None:
            raise ValueError(f"the password in the URL {problem}")
    return url
