"""The group catalogue (SPEC 3.1 and 4): data loaded from ``catalogue.toml``.

Every group fills one or two **slots**. An incoming group fills ``situation.fixed`` and/or
``situation.mobile`` (a ``both`` group fills both); a caller-ID group fills its family slot
(``caller_id.hours`` or ``caller_id.internal``). A user may hold at most one group per slot.

An operator adds groups (a 45-second variant, a short test variant) by writing another TOML file
in the same format and passing it as ``extra``: no code changes.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

__all__ = [
    "ACTIONS_BY_SITUATION",
    "DEFAULT_CATALOGUE_PATH",
    "SITUATIONS",
    "Catalogue",
    "CatalogueError",
    "Group",
    "MembershipError",
    "PolicyError",
    "UnknownGroupError",
    "load_catalogue",
]

DEFAULT_CATALOGUE_PATH = Path(__file__).with_name("catalogue.toml")

SITUATIONS: tuple[str, ...] = ("activity", "off_hours", "busy", "no_answer", "caller_id")

#: The actions a group of each situation may take (what ``decide`` knows how to carry out).
ACTIONS_BY_SITUATION: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "activity": frozenset({"announcement_voicemail", "voicemail", "alt_number", "announcement"}),
        "off_hours": frozenset({"announcement_voicemail", "voicemail", "alt_number", "announcement"}),
        "busy": frozenset({"alt_number", "queue", "voicemail_no_waiting", "voicemail"}),
        "no_answer": frozenset({"voicemail", "alt_number"}),
        "caller_id": frozenset({"fixed", "alt_number", "mobile", "hidden"}),
    }
)

_INCOMING_NUMBERS = frozenset({"fixed", "mobile", "both"})
_CALLER_ID_FAMILIES: Mapping[str, frozenset[str]] = MappingProxyType(
    {"hours": frozenset({"fixed", "alt_number", "mobile", "hidden"}), "internal": frozenset({"mobile"})}
)
_MAX_SECONDS = 600


class PolicyError(Exception):
    """Base of the policy domain's errors."""


class CatalogueError(PolicyError):
    """The catalogue data is invalid; the message names the offending entry."""


class UnknownGroupError(PolicyError, KeyError):
    """A group id that is not in the catalogue."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "unknown group"


class MembershipError(PolicyError):
    """Two groups fill the same slot; the message names both groups and the slot."""

    def __init__(self, message: str, *, slot: str, groups: tuple[str, str]) -> None:
        super().__init__(message)
        self.slot = slot
        self.groups = groups


@dataclass(frozen=True, slots=True)
class Group:
    id: str
    name: str
    name_en: str
    situation: str
    number: str  # fixed | mobile | both; for caller_id the family: hours | internal
    action: str
    seconds: int | None
    default: bool
    description: str
    slots: tuple[str, ...]

    @property
    def label(self) -> str:
        """``id`` with the Swedish name, as people see it in errors and explanations."""
        return f"`{self.id}` ({self.name})"


@dataclass(frozen=True, slots=True)
class Catalogue:
    groups: Mapping[str, Group]  # in file order
    defaults: tuple[str, ...]

    def get(self, group_id: str) -> Group:
        try:
            return self.groups[group_id]
        except KeyError:
            raise UnknownGroupError(f"unknown group {group_id!r}") from None

    def __contains__(self, group_id: object) -> bool:
        return group_id in self.groups

    def by_situation(self) -> dict[str, list[Group]]:
        """Groups by situation, situations in SPEC order, groups in file order."""
        out: dict[str, list[Group]] = {s: [] for s in SITUATIONS}
        for g in self.groups.values():
            out[g.situation].append(g)
        return out

    def slot_of(self, group_id: str) -> tuple[str, ...]:
        """The slot(s) a group fills, e.g. ``("busy.fixed", "busy.mobile")``."""
        return self.get(group_id).slots

    def slots_filled(self, ids: Iterable[str]) -> dict[str, Group]:
        """Map slot -> group for a valid membership (raises like ``check_membership``)."""
        filled: dict[str, Group] = {}
        for gid in sorted(set(ids)):
            g = self.get(gid)
            for slot in g.slots:
                other = filled.get(slot)
                if other is not None:
                    a, b = sorted((other, g), key=lambda x: x.id)
                    raise MembershipError(
                        f"groups {a.label} and {b.label} both fill slot {slot!r}; "
                        "a user may hold only one group per slot (untick one first)",
                        slot=slot,
                        groups=(a.id, b.id),
                    )
                filled[slot] = g
        return filled

    def check_membership(self, ids: Iterable[str]) -> None:
        """Refuse unknown ids (``UnknownGroupError``) and two groups in one slot (``MembershipError``)."""
        self.slots_filled(ids)


def _slots(situation: str, number: str) -> tuple[str, ...]:
    if situation == "caller_id":
        return (f"caller_id.{number}",)
    if number == "both":
        return (f"{situation}.fixed", f"{situation}.mobile")
    return (f"{situation}.{number}",)


def _str_field(raw: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> str:
    value = raw.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip():
        raise CatalogueError(f"{where}: field {key!r} must be a non-empty string")
    return value


def _parse_group(raw: Any, where: str) -> Group:
    if not isinstance(raw, dict):
        raise CatalogueError(f"{where}: a group must be a table")
    gid = raw.get("id")
    if isinstance(gid, str) and gid:
        where = f"{where} ({gid!r})"
    known = {"id", "name", "name_en", "situation", "number", "action", "seconds", "default", "description"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise CatalogueError(f"{where}: unknown field(s) {', '.join(unknown)}")
    gid = _str_field(raw, "id", where)
    name = _str_field(raw, "name", where)
    name_en = _str_field(raw, "name_en", where, required=False) or name
    situation = _str_field(raw, "situation", where)
    number = _str_field(raw, "number", where)
    action = _str_field(raw, "action", where)
    description = _str_field(raw, "description", where, required=False)
    default = raw.get("default", False)
    if not isinstance(default, bool):
        raise CatalogueError(f"{where}: field 'default' must be true or false")
    if situation not in ACTIONS_BY_SITUATION:
        raise CatalogueError(f"{where}: unknown situation {situation!r} (one of {', '.join(SITUATIONS)})")
    if situation == "caller_id":
        actions = _CALLER_ID_FAMILIES.get(number)
        if actions is None:
            raise CatalogueError(f"{where}: caller-ID family must be 'hours' or 'internal', not {number!r}")
        if action not in actions:
            raise CatalogueError(f"{where}: unknown action {action!r} for caller_id.{number}")
    else:
        if number not in _INCOMING_NUMBERS:
            raise CatalogueError(f"{where}: number must be fixed, mobile or both, not {number!r}")
        if action not in ACTIONS_BY_SITUATION[situation]:
            allowed = ", ".join(sorted(ACTIONS_BY_SITUATION[situation]))
            raise CatalogueError(f"{where}: unknown action {action!r} for {situation} (one of {allowed})")
    seconds = raw.get("seconds")
    if situation == "no_answer":
        if isinstance(seconds, bool) or not isinstance(seconds, int) or not 1 <= seconds <= _MAX_SECONDS:
            raise CatalogueError(
                f"{where}: a no_answer group needs 'seconds', an integer 1..{_MAX_SECONDS}, not {seconds!r}"
            )
        expected = f"{situation}.{number}.{action}.{seconds}"
    else:
        if seconds is not None:
            raise CatalogueError(f"{where}: only no_answer groups have 'seconds'")
        expected = f"{situation}.{number}.{action}"
    if gid != expected:
        raise CatalogueError(f"{where}: id {gid!r} does not match its fields (expected {expected!r})")
    return Group(
        id=gid,
        name=name,
        name_en=name_en,
        situation=situation,
        number=number,
        action=action,
        seconds=seconds,
        default=default,
        description=description,
        slots=_slots(situation, number),
    )


def _read_groups(path: Path) -> list[Group]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CatalogueError(f"{path}: cannot read catalogue: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise CatalogueError(f"{path}: invalid TOML: {exc}") from exc
    raw_groups = data.get("group", [])
    if not isinstance(raw_groups, list):
        raise CatalogueError(f"{path}: 'group' must be an array of tables ([[group]])")
    return [_parse_group(raw, f"{path.name} group #{i + 1}") for i, raw in enumerate(raw_groups)]


def _build(groups: list[Group], source: str) -> Catalogue:
    by_id: dict[str, Group] = {}
    for g in groups:
        if g.id in by_id:
            raise CatalogueError(f"{source}: duplicate group id {g.id!r}")
        by_id[g.id] = g
    defaults = tuple(g.id for g in groups if g.default)
    cat = Catalogue(groups=MappingProxyType(by_id), defaults=defaults)
    try:
        cat.check_membership(defaults)
    except MembershipError as exc:
        raise CatalogueError(f"{source}: the default groups conflict: {exc}") from exc
    return cat


@lru_cache(maxsize=1)
def _default_catalogue() -> Catalogue:
    return _build(_read_groups(DEFAULT_CATALOGUE_PATH), DEFAULT_CATALOGUE_PATH.name)


def load_catalogue(path: Path | None = None, extra: Path | None = None) -> Catalogue:
    """Load and validate the catalogue (the shipped one when ``path`` is None; that one is cached).

    ``extra`` is an operator's TOML file whose groups are appended (same format); a clash with an
    existing id is a ``CatalogueError``.
    """
    if path is None and extra is None:
        return _default_catalogue()
    groups = list(_default_catalogue().groups.values()) if path is None else _read_groups(path)
    source = (path or DEFAULT_CATALOGUE_PATH).name
    if extra is not None:
        groups += _read_groups(extra)
        source = f"{source} + {extra.name}"
    return _build(groups, source)
