"""Claims a text asserts, and their lenient matching against sources."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from onionskin.middleware._claims import (
    CLAIM_KINDS,
    Claim,
    ClaimExtractor,
    ClaimKind,
    Sources,
    number_key,
    url_key,
)
from onionskin.middleware._schema_check import check_arguments

EXTRACT = ClaimExtractor(CLAIM_KINDS)


def found(text: str, kind: ClaimKind) -> list[str]:
    return [claim.text for claim in EXTRACT.from_text(text) if claim.kind == kind]


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ("Your order ORD-12345 has shipped", ["ORD-12345"]),
        ("invoice INV_2024_7 is due", ["INV_2024_7"]),
        (
            "session 123e4567-e89b-12d3-a456-426614174000 ended",
            ["123e4567-e89b-12d3-a456-426614174000"],
        ),
        ("tracking 1Z999AA10123456784 today", ["1Z999AA10123456784"]),
        ("delivered on 2024-05-01 by 555-0123", ["2024-05-01", "555-0123"]),
        ("gpt-4o speaks utf-8 and x86 about B2B", []),
        ("a well-known, state-of-the-art shop", []),
    ],
)
def test_ids_are_found_and_words_with_digits_are_not(text: str, ids: list[str]) -> None:
    assert found(text, "id") == ids


@pytest.mark.parametrize(
    ("text", "numbers"),
    [
        ("It costs $1,200.50 in total", ["$1,200.50"]),
        ("take 1500mg, 20% off, 12 kg", ["1500mg", "20%", "12"]),
        ("rank 3 of 10, rated 4.5, 7 days", []),
        ("temperature -42 at #98765", ["42", "98765"]),
        ("gpt-4o, COVID-19 and v2", []),
        ("version 1.2.3 and 1,2345", []),
        ("It ends at 1200.", ["1200"]),
    ],
)
def test_numbers_skip_small_ones_and_parts_of_words(text: str, numbers: list[str]) -> None:
    assert found(text, "number") == numbers


def test_urls_lose_trailing_punctuation_and_ids_inside_them_are_not_claimed_twice() -> None:
    text = "See https://shop.test/orders/ORD-12345/, or (https://x.test/a?b=1)."
    assert found(text, "url") == ["https://shop.test/orders/ORD-12345/", "https://x.test/a?b=1"]
    assert found(text, "id") == []
    assert found(text, "number") == []


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ('the "Blue Moon Cafe" opens', ["Blue Moon Cafe"]),
        ("it's the 'Red Lion' pub", ["Red Lion"]),
        ("the dogs' bowls and the cats' toys", []),
        ("\u201cSmart\u201d and \u2018Curly\u2019 quotes", ["Smart", "Curly"]),
        ('a code "12345" is a number, not a name', []),
    ],
)
def test_quoted_names(text: str, names: list[str]) -> None:
    assert found(text, "name") == names


@pytest.mark.parametrize(
    ("text", "claims"),
    [
        ("no digits, quotes or links here", []),
        (
            "session deadbeef-dead-beef-dead-beefdeadbeef ended",
            [("id", "deadbeef-dead-beef-dead-beefdeadbeef")],
        ),
        ("a well-known http site", []),
        ("it's 'Red Lion' at http://pub.test", [("url", "http://pub.test"), ("name", "Red Lion")]),
        ("gpt-4 costs 1200", [("number", "1200")]),
    ],
)
def test_texts_without_the_characters_a_kind_needs_yield_the_same_claims(
    text: str, claims: list[tuple[str, str]]
) -> None:
    """A pattern is skipped when its required characters are absent; the result is the same."""
    assert [(claim.kind, claim.text) for claim in EXTRACT.from_text(text)] == claims


def test_quoted_names_hide_the_numbers_inside_them() -> None:
    claims = EXTRACT.from_text('we sell the "Model 3000" blender')
    assert [(claim.kind, claim.text) for claim in claims] == [("name", "Model 3000")]


def test_only_the_chosen_kinds_are_extracted() -> None:
    only_urls: tuple[ClaimKind, ...] = ("url",)
    extractor = ClaimExtractor(only_urls)
    text = 'ORD-12345 costs 1200 at https://shop.test "Blue Moon"'
    assert [claim.kind for claim in extractor.from_text(text)] == ["url"]


def test_the_small_number_threshold_is_configurable() -> None:
    numbers: tuple[ClaimKind, ...] = ("number",)
    strict = ClaimExtractor(numbers, ignore_up_to=0)
    assert [claim.key for claim in strict.from_text("3 items for 7.5")] == ["3", "7.5"]


def test_json_values_are_walked_and_keys_ignored() -> None:
    value = {"order": "ORD-12345", "total": 1200.0, "items": [3, 250], "paid": True, "x": None}
    claims = EXTRACT.from_value(value)
    assert [(claim.kind, claim.key) for claim in claims] == [
        ("id", "ord-12345"),
        ("number", "1200"),
        ("number", "250"),
    ]
    assert EXTRACT.from_value(object()) == []  # not JSON: nothing to read
    ids: tuple[ClaimKind, ...] = ("id",)
    assert ClaimExtractor(ids).from_value({"total": 1200}) == []


@pytest.mark.parametrize(
    ("written", "key"),
    [("1,200", "1200"), ("1200.00", "1200"), ("1,200.50", "1200.5"), ("0012", "12"), ("x", None)],
)
def test_number_keys_compare_values(written: str, key: str | None) -> None:
    assert number_key(written) == key


def test_url_keys_ignore_case_of_host_trailing_slash_and_fragment() -> None:
    assert url_key("HTTPS://Shop.Test/Orders/1/#top") == "https://shop.test/Orders/1"
    assert url_key("https://shop.test/a/?q=1") == "https://shop.test/a?q=1"


SOURCES = Sources(
    [
        "Order ORD-12345 for Jane: total 1200.00 USD, 3 items.",
        '{"tracking": "https://track.test/p/77/", "store": "blue moon cafe", "qty": 1500}',
    ]
)


@pytest.mark.parametrize(
    "claim",
    [
        Claim("id", "ord-12345", "ord-12345"),
        Claim("number", "$1,200", "1200"),
        Claim("number", "1,500", "1500"),
        Claim("number", "12345", "12345"),  # digits inside an id count in sources
        Claim("url", "https://TRACK.test/p/77", url_key("https://TRACK.test/p/77")),
        Claim("name", "Blue  Moon Cafe", "blue moon cafe"),
    ],
)
def test_sources_support_values_written_differently(claim: Claim) -> None:
    assert SOURCES.supports(claim)


@pytest.mark.parametrize(
    "claim",
    [
        Claim("id", "ORD-1234", "ord-1234"),  # a prefix of a real id is not that id
        Claim("id", "ORD-123456", "ord-123456"),
        Claim("number", "1201", "1201"),
        Claim("url", "https://track.test/p/78", "https://track.test/p/78"),
        Claim("name", "Red Lion", "red lion"),
    ],
)
def test_sources_do_not_support_other_values(claim: Claim) -> None:
    assert not SOURCES.supports(claim)


def test_sources_are_read_only_when_a_claim_needs_them_and_then_once() -> None:
    read: list[str] = []

    def texts() -> Iterator[str]:
        read.append("history")
        yield "Order ORD-12345, total 1200"

    sources = Sources(texts())
    assert sources.unsupported([]) == []
    assert read == []
    claims = EXTRACT.from_text("ORD-12345 for 1,200, not ORD-7777")
    assert [claim.text for claim in sources.unsupported(claims)] == ["ORD-7777"]
    assert read == ["history"]


def test_unsupported_lists_each_value_once_in_order() -> None:
    claims = EXTRACT.from_text("ORD-99999 and ORD-12345, again ORD-99999, total 999")
    assert [claim.text for claim in SOURCES.unsupported(claims)] == ["ORD-99999", "999"]


# --- JSON-schema check ---------------------------------------------------------------------

SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "days": {"type": "integer"},
        "unit": {"enum": ["c", "f"]},
        "address": {"$ref": "#/$defs/Address"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        "mode": {"const": "fast"},
        "extra": {"type": "object", "additionalProperties": {"type": "number"}},
    },
    "required": ["city"],
    "additionalProperties": False,
    "$defs": {
        "Address": {
            "type": "object",
            "properties": {"zip": {"type": "string"}},
            "required": ["zip"],
            "additionalProperties": False,
        }
    },
}


def test_arguments_that_fit_the_schema_have_no_problems() -> None:
    arguments = {
        "city": "Oslo",
        "days": 3.0,  # JSON has no int type: an integral float is an integer
        "unit": "c",
        "address": {"zip": "0150"},
        "tags": ["a"],
        "note": None,
        "mode": "fast",
        "extra": {"x": 1.5},
    }
    assert check_arguments(SCHEMA, arguments) == []


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ({}, ("city", "is required")),
        ({"city": "Oslo", "country": "NO"}, ("country", "is not an argument of this tool")),
        ({"city": 5}, ("city", "should be of type string, got integer")),
        ({"city": {1}}, ("city", "should be of type string, got set")),
        ({"city": "Oslo", "days": True}, ("days", "should be of type integer, got boolean")),
        ({"city": "Oslo", "unit": "k"}, ("unit", "should be one of 'c', 'f', got 'k'")),
        ({"city": "Oslo", "address": {}}, ("address.zip", "is required")),
        ({"city": "Oslo", "address": {"zip": "1", "x": 1}}, ("address.x", "is not a known field")),
        ({"city": "Oslo", "tags": ["a", 2]}, ("tags.1", "should be of type string, got integer")),
        ({"city": "Oslo", "note": 3}, ("note", "matches none of the allowed forms")),
        ({"city": "Oslo", "mode": "slow"}, ("mode", "should be 'fast', got 'slow'")),
        (
            {"city": "Oslo", "extra": {"x": "1"}},
            ("extra.x", "should be of type number, got string"),
        ),
    ],
)
def test_arguments_outside_the_schema_are_reported_with_their_path(
    arguments: dict[str, object], problem: tuple[str, str]
) -> None:
    assert check_arguments(SCHEMA, arguments) == [problem]


def test_a_recursive_or_dangling_ref_does_not_loop() -> None:
    schema = {
        "$ref": "#/$defs/Node",
        "$defs": {"Node": {"properties": {"n": {"$ref": "#/$defs/Node"}}}},
    }
    nested: dict[str, object] = {}
    for _ in range(2000):  # deeper than Python recursion goes
        nested = {"n": nested}
    assert check_arguments(schema, nested) == []
    assert check_arguments({"$ref": "#/$defs/Missing"}, {"a": 1}) == []
