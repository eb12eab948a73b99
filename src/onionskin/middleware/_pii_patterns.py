"""What `PIIRedactor` looks for, and how each action rewrites what it found.

Written here rather than taken from a library: Presidio needs spaCy models and
`phonenumbers` knows phones only; three patterns and a Luhn check are enough for a guard
that must stay pure, sync and fast. The patterns are heuristics: they favour finding too
much over missing personal data, within limits (dates, IPv4 addresses and digit runs that
fail the Luhn check are not taken for phones or cards).

About 260 lines: the prefilter (the least a text must hold for each kind) and the walker
that applies it before joining a path are what keep a scan of clean data at a few
microseconds; they belong with the patterns whose limits they encode.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Collection, Mapping
from typing import Any, Literal, TypeAlias

from onionskin.core.errors import ConfigError, InvalidInputError
from onionskin.middleware._config import require_choice

Action: TypeAlias = Literal["redact", "mask", "hash", "block"]
ACTIONS: tuple[Action, ...] = ("redact", "mask", "hash", "block")
BUILTIN_KINDS: tuple[str, ...] = ("email", "phone", "card")
PATTERN_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
# A prefilter: truthy when a text may hold what is looked for (a regex's `search` itself).
MayMatch: TypeAlias = Callable[[str], "re.Match[str] | bool | None"]
# Where a `block` action found something: (path, kind) pairs, as InvalidInputError holds.
Blocked: TypeAlias = list[tuple[str, str]]

EMAIL = re.compile(r"(?<![\w.%+-])[\w.%+-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,63}(?![\w-])")
# Digit groups of 2-4 split by one space, dot or dash, after an optional +country code
# and (area) code; or a compact +E.164 number. The look-arounds keep a match from starting
# or ending inside a longer run of digit groups (so a card is never half a phone).
_GROUPS = r"[0-9]{2,4}(?:[ .-][0-9]{2,4}){1,4}"
PHONE = re.compile(
    rf"(?<![\w+])(?:\+[0-9]{{7,15}}|\+[0-9]{{1,3}}[ .-]?(?:\([0-9]{{1,4}}\)[ .-]?)?{_GROUPS}"
    rf"|\([0-9]{{1,4}}\)[ .-]?{_GROUPS}|(?<![0-9][ .-]){_GROUPS})(?![\w])(?![ .-][0-9])"
)
# 13 to 19 digits, optionally split by single spaces or dashes; Luhn-checked afterwards.
CARD = re.compile(r"(?<![0-9])(?<![0-9][ -])[0-9](?:[ -]?[0-9]){12,18}(?![0-9])(?![ -][0-9])")
REGEXES: dict[str, re.Pattern[str]] = {"email": EMAIL, "phone": PHONE, "card": CARD}
_NOT_PHONE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}"  # an ISO date
    r"|[0-9]{1,2}[./-][0-9]{1,2}[./-][0-9]{4}"  # a day-month-year date
    r"|[0-9]{1,3}(?:\.[0-9]{1,3}){3}"  # an IPv4 address
)
_DIGIT = re.compile(r"[0-9]")


def luhn_valid(digits: str) -> bool:
    """Whether a string of ASCII digits passes the Luhn checksum of card numbers."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def digits_of(text: str) -> str:
    """The ASCII digits of `text`, in order."""
    return "".join(_DIGIT.findall(text))


def accepts(kind: str, text: str) -> bool:
    """Whether a regex match of a built-in `kind` really is one (checks regexes cannot do)."""
    if kind == "card":
        digits = digits_of(text)
        return luhn_valid(digits) and digits.strip("0") != ""
    if kind == "phone":
        return 7 <= len(digits_of(text)) <= 15 and not _NOT_PHONE.fullmatch(text)
    return True


# A phone has 7 digits at least, a card 13 (see `accepts`): text with fewer holds neither,
# and most text (names, ids, words) is ruled out by one search instead of every regex.
_DIGITS_FOR_PHONE = re.compile(r"[0-9](?:[^0-9]*[0-9]){6}")
_DIGITS_FOR_CARD = re.compile(r"[0-9](?:[^0-9]*[0-9]){12}")


def may_hold(kind: str, text: str) -> bool:
    """A cheap test that lets a scan skip a regex that cannot match `text`."""
    if kind == "email":
        return "@" in text
    if kind == "phone":
        return _DIGITS_FOR_PHONE.search(text) is not None
    return kind != "card" or _DIGITS_FOR_CARD.search(text) is not None


def prefilter(kinds: Collection[str], custom: bool) -> MayMatch:
    """One cheap test for text that any of `kinds` may hold (`may_hold` of them all).

    With custom patterns every text may match. Otherwise it is one regex's `search`, for an
    `@` or enough digits, so a text that can hold nothing costs one C call to pass.
    """
    if custom:
        return _anything
    needs = ["@"] if "email" in kinds else []
    if "phone" in kinds:
        needs.append(_DIGITS_FOR_PHONE.pattern)
    elif "card" in kinds:
        needs.append(_DIGITS_FOR_CARD.pattern)
    return re.compile("|".join(needs)).search


def _anything(text: str) -> bool:
    return True


def placeholder(kind: str) -> str:
    """The text that replaces a match under the `redact` action: `[EMAIL]`."""
    return f"[{kind.upper()}]"


def mask(kind: str, text: str) -> str:
    """Hide most of a match and keep its shape: `j***@e***.com`, `**** **** **** 1111`."""
    if kind == "email":
        local, _, domain = text.partition("@")
        head, _, tld = domain.rpartition(".")
        return f"{local[:1]}***@{head[:1]}***.{tld}"
    if kind in ("card", "phone"):
        keep = 4 if kind == "card" else 2
        return _mask_chars(text, keep, str.isdigit)
    return _mask_chars(text, 4 if len(text) > 8 else 0, str.isalnum)


def _mask_chars(text: str, keep: int, hidden: Callable[[str], bool]) -> str:
    """Replace every `hidden` character by `*` except the last `keep` of them."""
    total = sum(1 for char in text if hidden(char))
    out: list[str] = []
    seen = 0
    for char in text:
        if hidden(char):
            seen += 1
            out.append(char if seen > total - keep else "*")
        else:
            out.append(char)
    return "".join(out)


def fingerprint(kind: str, text: str, salt: bytes) -> str:
    """A stable, salted digest of a match: `[EMAIL:ab12cd34]`.

    The value is normalised first (emails lower-cased, phones and cards reduced to their
    digits) so that one person's data hashes alike however it was written. HMAC-SHA256
    keyed by the salt, so the digest cannot be looked up in an unsalted table.
    """
    if kind == "email":
        text = text.lower()
    elif kind in ("card", "phone"):
        text = digits_of(text)
    digest = hmac.new(salt, f"{kind}\0{text}".encode(), hashlib.sha256).hexdigest()
    return f"[{kind.upper()}:{digest[:8]}]"


def compile_patterns(owner: str, patterns: object) -> dict[str, re.Pattern[str]]:
    """Compile custom patterns; a bad name or regex raises `ConfigError` naming `patterns`."""
    if not isinstance(patterns, Mapping):
        raise ConfigError(f"{owner}.patterns must map names to regexes, got {patterns!r}")
    compiled: dict[str, re.Pattern[str]] = {}
    for name, source in patterns.items():
        if not isinstance(name, str) or not PATTERN_NAME.fullmatch(name):
            raise ConfigError(f"{owner}.patterns: name {name!r} must be a letter then letters/_")
        if name in BUILTIN_KINDS:
            raise ConfigError(f"{owner}.patterns: {name!r} is a built-in kind; rename it")
        try:
            regex = source if isinstance(source, re.Pattern) else re.compile(source)
        except (re.error, TypeError) as error:
            raise ConfigError(f"{owner}.patterns[{name!r}] is no valid regex: {error}") from error
        if regex.fullmatch(""):
            raise ConfigError(f"{owner}.patterns[{name!r}] matches the empty string")
        compiled[name] = regex
    return compiled


def check_actions(owner: str, action: object, actions: object, detected: Collection[str]) -> None:
    """`action` and every per-kind override are known actions, for kinds that are detected."""
    require_choice(owner, "action", action, ACTIONS)
    if not isinstance(actions, Mapping):
        raise ConfigError(f"{owner}.actions must map kinds to actions, got {actions!r}")
    for kind, override in actions.items():
        if kind not in detected:
            raise ConfigError(f"{owner}.actions names {kind!r}, which is not detected")
        require_choice(owner, f"actions[{kind!r}]", override, ACTIONS)


def raise_blocked(blocked: Blocked) -> None:
    """Raise `InvalidInputError` naming every `(path, kind)` that a `block` action found."""
    if blocked:
        where = ", ".join(f"{path or '(value)'} ({kind})" for path, kind in blocked)
        raise InvalidInputError(
            f"personal data that must not pass was found at {where}; remove it, or choose "
            "another action than 'block' for these kinds",
            errors=tuple(blocked),
        )


_HERE = object()
"""The `key` of a walk's root: its `path` is the whole path already."""


def walk(
    value: Any,
    path: str,
    text: Callable[[str, str], str],
    may_match: MayMatch = _anything,
    key: object = _HERE,
) -> Any:
    """Rewrite every str in a JSON-like `value` with `text(str, path)`, at any depth.

    Mappings (their values; keys are kept) and lists are rebuilt only when something in
    them changed; anything else passes as it came. A str that `may_match` rules out is
    never passed to `text`, and its path never joined (`key` is joined to `path` only
    when needed). Any: the caller's values, of any shape.
    """
    if isinstance(value, str):
        if not may_match(value):
            return value
        return text(value, path if key is _HERE else _join(path, key))
    kind = type(value)
    # Exact dicts, lists and tuples skip the slower check against the Mapping ABC; an
    # empty one has nothing to rewrite (nor a path to join).
    if kind is dict or (kind is not tuple and kind is not list and isinstance(value, Mapping)):
        return _walk_mapping(value, _here(path, key), text, may_match) if value else value
    if isinstance(value, list | tuple):
        return _walk_items(value, _here(path, key), text, may_match) if value else value
    return value


def _walk_mapping(
    value: Mapping[Any, Any], path: str, text: Callable[[str, str], str], may: MayMatch
) -> Any:
    out: dict[Any, Any] = {}
    changed = False
    for key, item in value.items():
        # A text leaf that holds nothing is kept without a call: most arguments are such.
        if type(item) is str and not may(item):
            out[key] = item
            continue
        new = out[key] = walk(item, path, text, may, key)
        changed = changed or new is not item
    return out if changed else value


def _walk_items(
    value: list[Any] | tuple[Any, ...],
    path: str,
    text: Callable[[str, str], str],
    may: MayMatch,
) -> Any:
    items = [walk(item, path, text, may, index) for index, item in enumerate(value)]
    if all(new is old for new, old in zip(items, value, strict=True)):
        return value
    return items if isinstance(value, list) else tuple(items)


def _here(path: str, key: object) -> str:
    return path if key is _HERE else _join(path, key)


def _join(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)
