"""The public HTTP bodies (camelCase, as the tutorial's DTOs), apart from the contracts.

Request bodies refuse unknown fields (the tutorial's ValidationPipe let them through).
"""

from __future__ import annotations

import re
from datetime import datetime
from http import HTTPStatus
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel
from vidmesh.contracts.strings import (
    MAX_EMAIL_LENGTH,
    MAX_PASSWORD_LENGTH,
    Email,
    FileName,
    NoControl,
    Password,
    Title,
)

MIN_PASSWORD_LENGTH: Final = 10
PASSWORD_SPECIALS: Final = "!@#$%^&*"
_PASSWORD_RULES: Final = (
    (re.compile(r"[0-9]"), "a digit"),
    (re.compile(r"[a-z]"), "a lower-case letter"),
    (re.compile(r"[A-Z]"), "an upper-case letter"),
    (re.compile(f"[{re.escape(PASSWORD_SPECIALS)}]"), f"one of {PASSWORD_SPECIALS}"),
)


def password_problems(password: str) -> list[str]:
    """What ``password`` lacks under the policy (empty: it passes)."""
    problems = []
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        problems.append(f"{MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters")
    problems.extend(name for rule, name in _PASSWORD_RULES if not rule.search(password))
    return problems


class PublicModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class RequestModel(PublicModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class SignupRequest(RequestModel):
    email: Annotated[EmailStr, NoControl] = Field(
        max_length=MAX_EMAIL_LENGTH, examples=["ada@example.com"]
    )
    password: str = Field(max_length=MAX_PASSWORD_LENGTH, examples=["Password1!x"])
    password_confirm: str = Field(max_length=MAX_PASSWORD_LENGTH, examples=["Password1!x"])

    @field_validator("password")
    @classmethod
    def _policy(cls, password: str) -> str:
        problems = password_problems(password)
        if problems:
            raise ValueError("password needs " + ", ".join(problems))
        return password

    @model_validator(mode="after")
    def _confirmed(self) -> SignupRequest:
        if self.password != self.password_confirm:
            raise ValueError("passwordConfirm must match password")
        return self


class SigninRequest(RequestModel):
    """No password policy here: sign-in only checks credentials (the tutorial leaked its
    policy at sign-in)."""

    email: Email = Field(examples=["ada@example.com"])
    password: Password = Field(examples=["Password1!x"])


class TokenPairResponse(PublicModel):
    access_token: str
    refresh_token: str


class SignupResponse(TokenPairResponse):
    id: str


class VideoCreated(PublicModel):
    id: str
    title: str


class PlaybackUrl(PublicModel):
    """A presigned URL a browser's ``<video src>`` or a CDN fetches with no headers at all."""

    url: str
    expires_at: datetime


class UploadRequest(RequestModel):
    """A direct upload: the client PUTs each part straight to the store."""

    filename: FileName = Field(examples=["holiday.mp4"])
    size: int = Field(ge=1, examples=[52_428_800])


class UploadPart(PublicModel):
    number: int
    url: str


class UploadCreated(PublicModel):
    upload_id: str
    part_size: int
    parts: list[UploadPart]
    expires_at: datetime


class ArrivedPart(PublicModel):
    number: int
    size: int
    etag: str


class UploadState(PublicModel):
    """What a client needs to resume: the parts that arrived, fresh URLs for the rest."""

    upload_id: str
    filename: str
    size: int | None
    part_size: int
    parts: list[ArrivedPart]
    missing: list[UploadPart]
    expires_at: datetime


class UploadComplete(RequestModel):
    title: Title = Field(examples=["My first video"])


class VideoMetadata(PublicModel):
    id: str
    title: str
    mimetype: str
    size: int
    user_id: str
    created_at: datetime


class VideoPageResponse(PublicModel):
    items: list[VideoMetadata]
    page: int
    size: int
    total: int


class TopVideo(PublicModel):
    video_id: str
    title: str | None
    """None when the video service no longer knows the video."""
    downloads: int


class Alive(PublicModel):
    status: Literal["ok"] = "ok"


class Readiness(PublicModel):
    status: Literal["ok"] = "ok"
    checks: dict[str, bool]


class ErrorBody(PublicModel):
    """The one error shape (documentation only: errors.py writes it)."""

    status_code: int
    message: str | list[str]
    error: str


def error_responses(*status_codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for a route's error statuses, each in the one error shape."""
    return {
        code: {"model": ErrorBody, "description": HTTPStatus(code).phrase} for code in status_codes
    }
