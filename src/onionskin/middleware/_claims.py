"""Values a text asserts (ids, URLs, numbers, quoted names) and whether a source supports them.

The hallucination guard asks, for every such value in a tool call's arguments or a final
answer, whether it occurs in the run's sources (the user's and system's messages and the
tool results). Extraction is strict, matching is lenient, so a value written differently
in the source is still found: numbers compare by value (`1,200` = `1200.00`), URLs without
a trailing slash and with a lower-case host, ids and names case-insensitively.

Hand-written regular expressions: no maintained library extracts these claims, and NER
models are far too heavy for a guard on every model call. Over 200 lines: extraction and
the sources' index share the patterns and keys; apart, each would import the other's privates.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Literal, TypeAlias
from urllib.parse import urlsplit

ClaimKind: TypeAlias = Literal["id", "url", "number", "name"]
CLAIM_KINDS: tuple[ClaimKind, ...] = ("id", "url", "number", "name")

_URL = re.compile(r"https?://[^\s<>\"'`()\[\]{}]+", re.IGNORECASE)
_QUOTE_OPENERS = ('"', "\u201c", "\u2018", "'")  # what each branch of _QUOTED starts with
_DIGIT = re.compile(r"\d")
_URL_TAIL = ".,;:!?"
_QUOTED = re.compile(
    r"\"([^\"\n]{2,80})\"|\u201c([^\u201d\n]{2,80})\u201d|\u2018([^\u2019\n]{2,80})\u2019"
    # A single quote opens only after a non-word character: "it's" and "dogs'" are no quotes.
    r"|(?<!\w)'([^'\n]{2,80})'(?!\w)"
)
_IDS = (
    re.compile(r"\b[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}\b", re.IGNORECASE),  # uuid
    re.compile(r"\b[A-Za-z][A-Za-z0-9]*(?:[-_][A-Za-z0-9]+)+\b"),  # ORD-12345, INV_2024_7
    re.compile(r"\b\d+(?:[-/]\d+)+\b"),  # 2024-05-01, 555-0123
    re.compile(r"\b(?=[A-Za-z0-9]*[A-Za-z]\d)[A-Za-z0-9]{6,}\b"),  # 1Z999AA1012, abc123
)
_ID_MIN_DIGITS = (0, 2, 5, 3)  # per pattern above: fewer digits reads as a word (gpt-4, utf-8)
# A number that is no part of a word (gpt-4o, B2B, COVID-19) nor of a longer number.
_NUMBER = re.compile(
    r"(?<![\w.,])(?<![A-Za-z]-)[$€£]?(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?!\d|[.,]\d)(%|[A-Za-z]+)?"
)
# In sources every digit run counts, also inside ids and words: matching is lenient.
_ANY_NUMBER = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?")


@dataclass(frozen=True, slots=True)
class Claim:
    """One value a text asserts: its kind, the text as written, and its key for matching."""

    kind: ClaimKind
    text: str
    key: str


def number_key(text: str) -> str | None:
    """The canonical form of a written number (`"1,200.50"` -> `"1200.5"`), None if none."""
    try:
        value = Decimal(text.replace(",", ""))
    except InvalidOperation:
        return None
    return format(value.normalize(), "f") if value.is_finite() else None


def url_key(url: str) -> str:
    """A URL compared loosely: lower-case scheme and host, no trailing slash or fragment."""
    parts = urlsplit(url.rstrip(_URL_TAIL))
    path = parts.path.rstrip("/")
    query = f"?{parts.query}" if parts.query else ""
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{path}{query}"


def _fold(text: str) -> str:
    return " ".join(text.casefold().split())


def _take(pattern: re.Pattern[str], text: str) -> tuple[list[re.Match[str]], str]:
    """The matches of `pattern`, and `text` with them blanked out for the kinds after it."""
    matches = list(pattern.finditer(text))
    for match in matches:
        start, end = match.span()
        text = text[:start] + " " * (end - start) + text[end:]
    return matches, text


def _urls(text: str, claims: list[Claim]) -> str:
    """Add the URLs in `text` to `claims`; `text` without them."""
    urls, rest = _take(_URL, text)
    for match in urls:
        url = match.group().rstrip(_URL_TAIL)
        claims.append(Claim("url", url, url_key(url)))
    return rest


def _names(text: str, claims: list[Claim]) -> str:
    """Add the quoted names in `text` to `claims`; `text` without the quotations."""
    quoted, rest = _take(_QUOTED, text)
    for match in quoted:
        name = next(group for group in match.groups() if group is not None).strip()
        if any(char.isalpha() for char in name):
            claims.append(Claim("name", name, _fold(name)))
    return rest


def _ids(text: str, claims: list[Claim], *, uuid_only: bool) -> str:
    """Add the ids in `text` to `claims`; `text` without them (and without id-like words)."""
    patterns = _IDS[:1] if uuid_only else _IDS
    for pattern, least in zip(patterns, _ID_MIN_DIGITS, strict=False):
        ids, text = _take(pattern, text)
        for match in ids:
            if sum(char.isdigit() for char in match.group()) >= least:
                claims.append(Claim("id", match.group(), match.group().casefold()))
    return text


class ClaimExtractor:
    """Finds the claims of the chosen kinds in a text or a JSON value."""

    __slots__ = ("ignore_up_to", "kinds")

    def __init__(self, kinds: Collection[ClaimKind], *, ignore_up_to: float = 10) -> None:
        self.kinds = frozenset(kinds)
        self.ignore_up_to = Decimal(str(ignore_up_to))
        """Numbers whose size is at most this are too common to check (counts, ranks)."""

    def from_text(self, text: str) -> list[Claim]:
        """The claims in free text, in the order URLs, names, ids, numbers."""
        claims: list[Claim] = []
        # Fast paths (this runs on every model response): each pattern scans the whole text,
        # and one whose required characters are absent cannot match, so it is not run. Ids
        # other than a uuid, and numbers, need a digit; a uuid needs hyphens.
        rest = _urls(text, claims) if "://" in text else text
        if any(opener in rest for opener in _QUOTE_OPENERS):
            rest = _names(rest, claims)
        digits = _DIGIT.search(rest) is not None
        if digits or "-" in rest:
            rest = _ids(rest, claims, uuid_only=not digits)
        if digits:
            for match in _NUMBER.finditer(rest):
                self._add_number(claims, match.group(), match.group(1) + (match.group(2) or ""))
        return [claim for claim in claims if claim.kind in self.kinds]

    def from_value(self, value: object) -> list[Claim]:
        """The claims in a JSON value: its strings read as text, its numbers as numbers."""
        if isinstance(value, str):
            return self.from_text(value)
        if isinstance(value, bool) or value is None:
            return []
        if isinstance(value, int | float):
            claims: list[Claim] = []
            self._add_number(claims, str(value), str(value))
            return [claim for claim in claims if "number" in self.kinds]
        items: Iterable[object] = ()
        if isinstance(value, Mapping):
            items = value.values()
        elif isinstance(value, list | tuple):
            items = value
        return [claim for item in items for claim in self.from_value(item)]

    def _add_number(self, claims: list[Claim], written: str, digits: str) -> None:
        key = number_key(digits)
        if key is not None and abs(Decimal(key)) > self.ignore_up_to:
            claims.append(Claim("number", written, key))


class Sources:
    """The texts a run's claims may come from, indexed for lenient matching when first asked.

    Most responses assert nothing worth checking: those never read the texts. Each index
    (URLs, numbers, folded text) is built when a claim of its kind is first asked about.
    """

    __slots__ = ("_folded", "_numbers", "_text", "_texts", "_urls")

    def __init__(self, texts: Iterable[str]) -> None:
        self._texts = texts
        """Read when first needed, so it may be a lazy generator."""
        self._text: str | None = None
        self._folded: str | None = None
        self._urls: set[str] | None = None
        self._numbers: set[str | None] | None = None

    def supports(self, claim: Claim) -> bool:
        """Whether `claim`'s value occurs in the sources."""
        if claim.kind == "url":
            return claim.key in self._url_keys()
        if claim.kind == "number":
            return claim.key in self._number_keys()
        if self._folded is None:
            self._folded = _fold(self._joined())
        if claim.kind == "name":
            return claim.key in self._folded
        # An id matches whole: ORD-1 is not supported by ORD-12.
        pattern = rf"(?<![a-z0-9]){re.escape(claim.key)}(?![a-z0-9])"
        return re.search(pattern, self._folded) is not None

    def _joined(self) -> str:
        if self._text is None:
            self._text = "\n".join(self._texts)
        return self._text

    def _url_keys(self) -> set[str]:
        if self._urls is None:
            written = {match.group() for match in _URL.finditer(self._joined())}
            self._urls = {url_key(url) for url in written}
        return self._urls

    def _number_keys(self) -> set[str | None]:
        if self._numbers is None:
            # Parsing is the costly part: each number as written once (results repeat them).
            written = {match.group() for match in _ANY_NUMBER.finditer(self._joined())}
            self._numbers = {number_key(number) for number in written}
        return self._numbers

    def unsupported(self, claims: Iterable[Claim]) -> list[Claim]:
        """The claims no source supports, each value once, in order."""
        seen: set[tuple[str, str]] = set()
        found: list[Claim] = []
        for claim in claims:
            if (claim.kind, claim.key) not in seen and not self.supports(claim):
                seen.add((claim.kind, claim.key))
                found.append(claim)
        return found
