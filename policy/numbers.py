"""Phone numbers: normalised to E.164 once, at the edge (``phonenumbers``)."""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers

from policy.catalogue import PolicyError

__all__ = ["InvalidNumberError", "is_e164", "normalise"]

_E164 = re.compile(r"\+[1-9]\d{1,14}")


class InvalidNumberError(PolicyError, ValueError):
    """A number that cannot be read as a valid phone number."""


def is_e164(number: str) -> bool:
    """True for a syntactically E.164 number (``+`` then 2-15 digits, no leading zero)."""
    return _E164.fullmatch(number) is not None


def normalise(number: str, region: str = "SE") -> str:
    """Return ``number`` in E.164 (``08-100 010 02`` -> ``+46810001002`` for region SE).

    Raises ``InvalidNumberError`` naming the input when it is not a valid number.
    """
    ok, text = _normalise(number, region)
    if not ok:
        raise InvalidNumberError(text)
    return text


@lru_cache(maxsize=16384)
def _normalise(number: str, region: str) -> tuple[bool, str]:
    # Cached: every call normalises the dialled and calling numbers, and phonenumbers costs
    # ~30 us a parse; the same numbers come back all day. Failures are cached as their message.
    text = number.strip()
    if not text:
        return False, "empty phone number"
    try:
        parsed = phonenumbers.parse(text, region.upper())
    except phonenumbers.NumberParseException as exc:
        return False, f"not a phone number: {number!r} ({exc})"
    if not phonenumbers.is_valid_number(parsed):
        return False, f"not a valid phone number: {number!r} (region {region.upper()})"
    result: str = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return True, result
