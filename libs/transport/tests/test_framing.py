"""Nest's ``<length>#<json>`` framing: encode_frame, utf16_length and FrameDecoder."""

import itertools
import json
from typing import Any

import orjson
import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vidmesh.transport.errors import CloseReason, FrameError
from vidmesh.transport.tcp.framing import (
    MAX_LENGTH_DIGITS,
    FrameDecoder,
    encode_frame,
    utf16_length,
)

KOREAN = "안녕하세요"  # 5 units in JavaScript, 15 bytes in UTF-8
EMOJI = "😀"  # 2 units (a surrogate pair), 4 bytes
MiB = 1024 * 1024
HEADER_ALLOWANCE = MAX_LENGTH_DIGITS + 1


def frame(body: str) -> bytes:
    """A frame built by hand, with the length computed the way JavaScript does."""
    return f"{len(body.encode('utf-16-le')) // 2}#{body}".encode()


def feed_all(decoder: FrameDecoder, chunks: list[bytes]) -> list[Any]:
    packets: list[Any] = []
    for chunk in chunks:
        packets.extend(decoder.feed(chunk))
    return packets


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted(cuts), len(data)]
    return [data[start:end] for start, end in itertools.pairwise(bounds)]


def corrupt(data: bytes, max_frame_length: int = MiB) -> FrameError:
    decoder = FrameDecoder(max_frame_length)
    with pytest.raises(FrameError) as caught:
        decoder.feed(data)
    return caught.value


# -- utf16_length ---------------------------------------------------------------------------


def test_utf16_length_of_ascii_is_its_length() -> None:
    assert utf16_length('{"cmd":"x"}') == 11


def test_utf16_length_counts_a_korean_syllable_as_one_unit() -> None:
    assert utf16_length(KOREAN) == 5


def test_utf16_length_counts_an_emoji_as_two_units() -> None:
    assert utf16_length(EMOJI) == 2


def test_utf16_length_counts_other_astral_characters_as_two_units() -> None:
    assert utf16_length("𝄞𠀀") == 4  # musical symbol, CJK extension B


def test_utf16_length_of_mixed_text_adds_up() -> None:
    assert utf16_length(f"a{KOREAN}{EMOJI}é") == 1 + 5 + 2 + 1


def test_utf16_length_of_empty_text_is_zero() -> None:
    assert utf16_length("") == 0


# -- encode_frame ---------------------------------------------------------------------------


def test_encode_frame_prefixes_the_length_and_delimiter() -> None:
    assert encode_frame({"cmd": "x"}) == b'11#{"cmd":"x"}'


def test_encode_frame_writes_compact_json() -> None:
    body = encode_frame({"a": [1, 2], "b": None}).split(b"#", 1)[1]
    assert body == b'{"a":[1,2],"b":null}'


def test_encode_frame_counts_korean_in_utf16_units_not_bytes() -> None:
    encoded = encode_frame(KOREAN)
    assert encoded == f"7#{json.dumps(KOREAN, ensure_ascii=False)}".encode()


def test_encode_frame_counts_an_emoji_as_two_units() -> None:
    assert encode_frame(EMOJI) == f'4#"{EMOJI}"'.encode()


def test_encode_frame_serialises_pydantic_models_by_alias() -> None:
    class Video(pydantic.BaseModel):
        video_id: int = pydantic.Field(alias="videoId")

    assert encode_frame(Video(videoId=3)) == b'13#{"videoId":3}'


def test_encode_frame_serialises_tuples_and_sets_as_arrays() -> None:
    assert encode_frame({"t": (1, 2), "s": {3}}) == b'19#{"t":[1,2],"s":[3]}'


def test_encode_frame_rejects_values_json_cannot_carry() -> None:
    with pytest.raises(TypeError):
        encode_frame({"when": object()})


# -- FrameDecoder: well-formed input -------------------------------------------------------


def test_decoder_decodes_one_frame() -> None:
    assert FrameDecoder(MiB).feed(b'11#{"cmd":"x"}') == [{"cmd": "x"}]


def test_decoder_decodes_several_frames_in_one_read() -> None:
    data = encode_frame(1) + encode_frame("two") + encode_frame({"three": 3})
    assert FrameDecoder(MiB).feed(data) == [1, "two", {"three": 3}]


def test_decoder_decodes_a_frame_fed_byte_by_byte() -> None:
    data = encode_frame({"text": KOREAN + EMOJI})
    packets = feed_all(FrameDecoder(MiB), [data[i : i + 1] for i in range(len(data))])
    assert packets == [{"text": KOREAN + EMOJI}]


def test_decoder_returns_nothing_until_the_frame_is_complete() -> None:
    decoder = FrameDecoder(MiB)
    assert decoder.feed(b'11#{"cmd":') == []
    assert decoder.feed(b'"x"}') == [{"cmd": "x"}]


def test_decoder_handles_a_split_anywhere_in_multibyte_text() -> None:
    data = encode_frame({"t": f"{KOREAN}{EMOJI}é𝄞"})
    for cut in range(1, len(data)):
        packets = feed_all(FrameDecoder(MiB), [data[:cut], data[cut:]])
        assert packets == [{"t": f"{KOREAN}{EMOJI}é𝄞"}], f"split at byte {cut}"


def test_decoder_accepts_a_length_with_leading_zeros() -> None:
    assert FrameDecoder(MiB).feed(b"0002#42") == [42]


def test_decoder_accepts_a_frame_of_exactly_max_frame_length() -> None:
    body = json.dumps("x" * 98)  # 100 characters
    assert FrameDecoder(100).feed(frame(body)) == ["x" * 98]


def test_decoder_replaces_invalid_utf8_like_nodes_string_decoder() -> None:
    assert FrameDecoder(MiB).feed(b'3#"\xff"') == ["\ufffd"]


def test_decoder_decodes_escaped_control_characters() -> None:
    value = "tab\there\x00nul\u2028"
    assert FrameDecoder(MiB).feed(encode_frame(value)) == [value]


def test_decoder_decodes_a_1mib_frame_fed_in_64kib_chunks() -> None:
    value = {"text": (KOREAN + EMOJI + "abc") * (MiB // 20)}
    data = encode_frame(value)
    assert len(data) > MiB
    decoder = FrameDecoder(16 * MiB)
    step = 64 * 1024
    results = [decoder.feed(data[i : i + step]) for i in range(0, len(data), step)]
    assert results[-1] == [value]
    assert not any(results[:-1])


def test_decoder_decodes_many_1mib_ascii_frames_fed_in_64kib_chunks() -> None:
    value = "a" * MiB
    data = encode_frame(value) * 8
    decoder = FrameDecoder(2 * MiB)
    step = 64 * 1024
    packets = feed_all(decoder, [data[i : i + step] for i in range(0, len(data), step)])
    assert packets == [value] * 8


# -- FrameDecoder: corrupt input -----------------------------------------------------------


def test_decoder_rejects_negative_length() -> None:
    assert corrupt(b"-5#12345").reason is CloseReason.CORRUPTED_LENGTH


def test_decoder_rejects_non_numeric_length() -> None:
    assert corrupt(b"abc#").reason is CloseReason.CORRUPTED_LENGTH


def test_decoder_rejects_empty_length() -> None:
    assert corrupt(b"#{}").reason is CloseReason.CORRUPTED_LENGTH


def test_decoder_rejects_a_non_digit_before_the_delimiter_arrives() -> None:
    assert corrupt(b"12x").reason is CloseReason.CORRUPTED_LENGTH


def test_decoder_rejects_a_length_with_a_plus_sign() -> None:
    assert corrupt(b"+2#42").reason is CloseReason.CORRUPTED_LENGTH


def test_decoder_rejects_an_overlong_header_without_delimiter() -> None:
    assert corrupt(b"1" * (MAX_LENGTH_DIGITS + 1)).reason is CloseReason.CORRUPTED_LENGTH


def test_decoder_rejects_non_ascii_digits_in_the_length() -> None:
    assert corrupt("١٢#".encode()).reason is CloseReason.CORRUPTED_LENGTH  # Arabic-Indic


def test_decoder_waits_for_a_header_of_max_digits_without_delimiter() -> None:
    decoder = FrameDecoder(MiB)
    assert decoder.feed(b"0" * MAX_LENGTH_DIGITS) == []
    assert decoder.has_partial_frame


def test_decoder_rejects_frame_over_max_length_as_soon_as_header_is_read() -> None:
    decoder = FrameDecoder(1000)
    with pytest.raises(FrameError) as caught:
        decoder.feed(b"1001#")  # no body byte has arrived yet
    assert caught.value.reason is CloseReason.FRAME_TOO_LARGE


def test_decoder_rejects_huge_announced_length_before_the_body() -> None:
    assert corrupt(b"9999999999#", max_frame_length=MiB).reason is CloseReason.FRAME_TOO_LARGE


def test_decoder_rejects_invalid_json() -> None:
    assert corrupt(b"5#{nop}").reason is CloseReason.INVALID_JSON


def test_decoder_rejects_an_empty_body() -> None:
    assert corrupt(b"0#").reason is CloseReason.INVALID_JSON


def test_decoder_rejects_a_body_shorter_than_announced_json() -> None:
    assert corrupt(b'3#{"a":1}').reason is CloseReason.INVALID_JSON


def test_decoder_rejects_a_length_that_splits_a_surrogate_pair() -> None:
    body = f'"{EMOJI}"'  # 4 units: quote, high surrogate, low surrogate, quote
    error = corrupt(f"2#{body}".encode())
    assert error.reason is CloseReason.CORRUPTED_LENGTH


def test_decoder_rejects_a_surrogate_split_that_arrives_in_pieces() -> None:
    data = f'2#"{EMOJI}"'.encode()
    decoder = FrameDecoder(MiB)
    with pytest.raises(FrameError) as caught:
        feed_all(decoder, [data[i : i + 1] for i in range(len(data))])
    assert caught.value.reason is CloseReason.CORRUPTED_LENGTH


def test_frame_error_message_names_the_reason() -> None:
    assert str(corrupt(b"abc#")).startswith("corrupted_length: ")


# -- has_partial_frame / buffered_units ----------------------------------------------------


def test_fresh_decoder_has_no_partial_frame() -> None:
    assert not FrameDecoder(MiB).has_partial_frame


def test_partial_header_is_a_partial_frame() -> None:
    decoder = FrameDecoder(MiB)
    decoder.feed(b"12")
    assert decoder.has_partial_frame


def test_header_without_body_is_a_partial_frame() -> None:
    decoder = FrameDecoder(MiB)
    decoder.feed(b"5#")
    assert decoder.has_partial_frame


def test_partial_body_is_a_partial_frame() -> None:
    decoder = FrameDecoder(MiB)
    decoder.feed(b'11#{"cmd"')
    assert decoder.has_partial_frame


def test_partial_utf8_character_is_a_partial_frame() -> None:
    decoder = FrameDecoder(MiB)
    decoder.feed(KOREAN.encode()[:1])  # the first of three bytes of one syllable
    assert decoder.has_partial_frame


def test_complete_frame_leaves_no_partial_frame() -> None:
    decoder = FrameDecoder(MiB)
    decoder.feed(encode_frame({"a": 1}) + encode_frame([2]))
    assert not decoder.has_partial_frame


def test_start_of_next_frame_after_a_complete_one_is_a_partial_frame() -> None:
    decoder = FrameDecoder(MiB)
    decoder.feed(encode_frame(1) + b"3")
    assert decoder.has_partial_frame


def test_buffered_units_counts_utf16_units_of_a_partial_body() -> None:
    decoder = FrameDecoder(MiB)
    decoder.feed(f'20#"{KOREAN}{EMOJI}'.encode())
    assert decoder.buffered_units == 1 + 5 + 2


def test_buffered_units_is_zero_after_complete_frames() -> None:
    decoder = FrameDecoder(MiB)
    decoder.feed(encode_frame(KOREAN) * 3)
    assert decoder.buffered_units == 0


# -- properties ----------------------------------------------------------------------------

INTERESTING_CHARACTERS = '한국어비디오😀🎬👩‍💻𝄞𠀀é\x00\x01\x1f\x7f\u2028\u2029\ufeff"\\/#0'

json_text = st.text(
    alphabet=st.one_of(
        st.characters(exclude_categories=("Cs",)),  # lone surrogates are not valid JSON text
        st.sampled_from(INTERESTING_CHARACTERS),
    ),
    max_size=30,
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | json_text,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(json_text, children, max_size=5)
    ),
    max_leaves=15,
)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=st.lists(json_values, min_size=1, max_size=6), data=st.data())
def test_frames_split_anywhere_decode_to_the_values_sent(values: list[Any], data: Any) -> None:
    stream = b"".join(encode_frame(value) for value in values)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=12), label="cuts")
    decoder = FrameDecoder(MiB)
    assert feed_all(decoder, split_at(stream, cuts)) == values
    assert not decoder.has_partial_frame


def _mutate(stream: bytes, data: Any) -> bytes:
    mutated = bytearray(stream)
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        position = data.draw(st.integers(0, len(mutated)), label="position")
        kind = data.draw(st.sampled_from(["flip", "insert", "delete", "digits"]), label="kind")
        if kind == "flip" and position < len(mutated):
            mutated[position] ^= 1 << data.draw(st.integers(0, 7), label="bit")
        elif kind == "insert":
            mutated[position:position] = data.draw(st.binary(min_size=1, max_size=4))
        elif kind == "delete":
            del mutated[position : position + data.draw(st.integers(1, 4), label="count")]
        elif kind == "digits":
            mutated[position:position] = str(data.draw(st.integers(0, 10**12))).encode()
    return bytes(mutated)


def _feed_checking_bounds(decoder: FrameDecoder, chunks: list[bytes]) -> None:
    """Feed until the decoder gives up; only FrameError may escape."""
    bound = decoder.max_frame_length + HEADER_ALLOWANCE
    try:
        for chunk in chunks:
            decoder.feed(chunk)
            assert decoder.buffered_units <= bound
    except FrameError:
        pass


@settings(max_examples=500, deadline=None)
@given(payload=st.binary(max_size=200), data=st.data())
def test_arbitrary_bytes_yield_packets_or_frame_error_and_stay_bounded(
    payload: bytes, data: Any
) -> None:
    cuts = data.draw(st.lists(st.integers(0, len(payload)), max_size=8), label="cuts")
    _feed_checking_bounds(FrameDecoder(32), split_at(payload, cuts))


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=st.lists(json_values, min_size=1, max_size=4), data=st.data())
def test_mutated_frames_yield_packets_or_frame_error_and_stay_bounded(
    values: list[Any], data: Any
) -> None:
    stream = _mutate(b"".join(encode_frame(value) for value in values), data)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=8), label="cuts")
    max_frame_length = data.draw(st.sampled_from([16, 64, 1024]), label="max_frame_length")
    _feed_checking_bounds(FrameDecoder(max_frame_length), split_at(stream, cuts))


@settings(max_examples=300, deadline=None)
@given(value=json_values)
def test_encoded_length_is_javascripts_string_length_of_the_body(value: Any) -> None:
    header, _, body = encode_frame(value).partition(b"#")
    text = body.decode()
    assert int(header) == len(text.encode("utf-16-le")) // 2
    assert orjson.loads(text) == value


def test_frame_error_carries_the_packets_decoded_before_it() -> None:
    decoder = FrameDecoder(1024)
    with pytest.raises(FrameError) as caught:
        decoder.feed(b'7#{"a":1}7#{"b":2}-1#')
    assert caught.value.packets == [{"a": 1}, {"b": 2}]


def test_frame_error_in_the_text_path_carries_the_packets_decoded_before_it() -> None:
    decoder = FrameDecoder(1024)
    body = '{"k":"한"}'
    with pytest.raises(FrameError) as caught:
        decoder.feed(f"{len(body)}#{body}zz#".encode())
    assert caught.value.packets == [{"k": "한"}]
