"""Every string of the contracts is capped, and the free-text ones refuse control characters."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from vidmesh.contracts import analytics, events, user, video
from vidmesh.contracts.wire import WireModel

ID = "0f8fad5b-d9cb-469f-a165-70867728950e"
CONTROLS = ["\x00", "\x01", "\t", "\n", "\x1f", "\x7f", "\x85", "\x9f"]


def refused(model: type[WireModel], **fields: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        model(**fields)
    return str(caught.value)


@pytest.mark.parametrize("control", CONTROLS)
def test_control_characters_are_refused_in_emails_titles_file_names_and_ids(control: str) -> None:
    assert "control characters" in refused(
        user.Credentials, email=f"a{control}@example.com", password="x"
    )
    assert "control characters" in refused(
        video.UploadFinish, upload_id=ID, user_id=ID, title=f"My{control}video"
    )
    assert "control characters" in refused(
        video.UploadStart, user_id=ID, filename=f"a{control}.mp4"
    )
    assert "control characters" in refused(video.VideoLookup, id=f"{ID}{control}")


def test_a_password_may_hold_any_character_it_is_only_hashed() -> None:
    assert user.Credentials(email="a@example.com", password="tab\there").password == "tab\there"


def test_printable_unicode_passes() -> None:
    title = "Été à Zürich — 東京 🎬"
    finish = video.UploadFinish(upload_id=ID, user_id=ID, title=title)
    assert finish.title == title


@pytest.mark.parametrize(
    ("model", "fields", "field", "cap"),
    [
        (user.Credentials, {"password": "x"}, "email", user.MAX_EMAIL_LENGTH),
        (user.Credentials, {"email": "a@example.com"}, "password", user.MAX_PASSWORD_LENGTH),
        (user.UserLookup, {}, "id", 64),
        (video.UploadFinish, {"upload_id": ID, "user_id": ID}, "title", video.MAX_TITLE_LENGTH),
        (video.UploadStart, {"user_id": ID}, "filename", 255),
        (video.VideoLookup, {}, "id", 64),
        (video.ReadRequest, {}, "id", 64),
        (analytics.VideoStatsQuery, {}, "id", 64),
        (
            events.VideoDownloaded,
            {"id": ID, "downloadedAt": "2026-01-01T00:00:00Z"},
            "event_id",
            255,
        ),
    ],
)
def test_each_string_is_capped_at_its_columns_length(
    model: type[WireModel], fields: dict[str, Any], field: str, cap: int
) -> None:
    model(**fields, **{field: "a@" + "b" * (cap - 2)})
    assert "at most" in refused(model, **fields, **{field: "a@" + "b" * (cap - 1)})
