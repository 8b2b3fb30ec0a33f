"""The group catalogue (SPEC 3.1 and 4): data, slots, conflicts, validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from policy.catalogue import CatalogueError, MembershipError, UnknownGroupError, load_catalogue

CAT = load_catalogue()

EXPECTED_IDS = (
    ["activity.both.announcement_voicemail", "no_answer.both.voicemail.30", "busy.both.voicemail"]
    + [
        f"activity.{n}.{a}"
        for a in ("announcement_voicemail", "voicemail", "alt_number", "announcement")
        for n in ("fixed", "mobile")
    ]
    + [
        f"busy.{n}.{a}"
        for a in ("alt_number", "queue", "voicemail_no_waiting", "voicemail")
        for n in ("fixed", "mobile")
    ]
    + [
        f"no_answer.{n}.{a}.{s}"
        for a in ("voicemail", "alt_number")
        for s in (20, 30)
        for n in ("fixed", "mobile")
    ]
    + [f"off_hours.{n}.{a}" for a in ("voicemail", "alt_number") for n in ("fixed", "mobile")]
    + [f"caller_id.hours.{a}" for a in ("fixed", "alt_number", "mobile", "hidden")]
    + ["caller_id.internal.mobile"]
)


def test_36_groups_in_file_order() -> None:
    assert list(CAT.groups) == EXPECTED_IDS
    assert len(CAT.groups) == 36


def test_defaults() -> None:
    assert CAT.defaults == (
        "activity.both.announcement_voicemail",
        "no_answer.both.voicemail.30",
        "busy.both.voicemail",
    )
    assert all(CAT.get(g).default for g in CAT.defaults)
    assert sum(g.default for g in CAT.groups.values()) == 3
    CAT.check_membership(CAT.defaults)


@pytest.mark.parametrize(
    ("gid", "name"),
    [
        ("activity.both.announcement_voicemail", "Fastnr_Mobil -> Medd_Telefonsvar"),
        ("no_answer.both.voicemail.30", "30 sek Fastnr_Mobil -> Telefonsvar"),
        ("busy.both.voicemail", "Fastnr_Mobil -> Telefonsvar"),
        ("activity.fixed.announcement_voicemail", "Fastnr -> Medd -> Telefonsvar"),
        ("activity.mobile.announcement", "Mobilnr -> Medd"),
        ("activity.fixed.voicemail", "Fastnr -> Telefonsvar"),
        ("busy.fixed.voicemail", "Fastnr -> Telefonsvar"),
        ("busy.mobile.queue", "Mobilnr -> Kö"),
        ("busy.fixed.voicemail_no_waiting", "Fastnr -> Telefonsvar (Ej Samtal väntat)"),
        ("no_answer.fixed.alt_number.20", "20 sek Fastnr -> Alt.nr"),
        ("no_answer.mobile.voicemail.30", "30 sek Mobilnr -> Telefonsvar"),
        ("off_hours.mobile.alt_number", "[Inkommande] Tidsstyrt Vk Mobilnr -> Alt.nr"),
        ("off_hours.fixed.voicemail", "[Inkommande] Tidsstyrt Vk Fastnr -> Telefonsvar"),
        ("caller_id.hours.fixed", "[Utgående] Nummervisning Fastnr kontorstid"),
        ("caller_id.hours.alt_number", "[Utgående] Nummervisning Alt.nr kontorstid"),
        ("caller_id.hours.mobile", "[Utgående] Nummervisning Mobilt nr kontorstid"),
        ("caller_id.hours.hidden", "[Utgående] Nummervisning Dolt nr kontorstid"),
        ("caller_id.internal.mobile", "[Utgående] Nummervisning Mobilnummer Internt"),
    ],
)
def test_swedish_names(gid: str, name: str) -> None:
    assert CAT.get(gid).name == name


def test_fields_match_ids_and_every_group_is_described() -> None:
    for g in CAT.groups.values():
        parts = [g.situation, g.number, g.action] + ([str(g.seconds)] if g.seconds is not None else [])
        assert ".".join(parts) == g.id
        assert g.description and g.name_en
        assert (g.seconds is not None) == (g.situation == "no_answer")


@pytest.mark.parametrize(
    ("gid", "slots"),
    [
        ("no_answer.both.voicemail.30", ("no_answer.fixed", "no_answer.mobile")),
        ("busy.fixed.queue", ("busy.fixed",)),
        ("activity.mobile.voicemail", ("activity.mobile",)),
        ("off_hours.fixed.alt_number", ("off_hours.fixed",)),
        ("caller_id.hours.hidden", ("caller_id.hours",)),
        ("caller_id.internal.mobile", ("caller_id.internal",)),
    ],
)
def test_slots(gid: str, slots: tuple[str, ...]) -> None:
    assert CAT.slot_of(gid) == slots


def test_by_situation() -> None:
    counts = {s: len(gs) for s, gs in CAT.by_situation().items()}
    assert counts == {"activity": 9, "off_hours": 4, "busy": 9, "no_answer": 9, "caller_id": 5}


def test_both_default_conflicts_with_a_fixed_group() -> None:
    with pytest.raises(MembershipError) as ei:
        CAT.check_membership(["no_answer.both.voicemail.30", "no_answer.fixed.alt_number.20"])
    msg = str(ei.value)
    assert "no_answer.both.voicemail.30" in msg and "30 sek Fastnr_Mobil -> Telefonsvar" in msg
    assert "no_answer.fixed.alt_number.20" in msg and "20 sek Fastnr -> Alt.nr" in msg
    assert "no_answer.fixed" in msg
    assert ei.value.slot == "no_answer.fixed"


@pytest.mark.parametrize(
    "ids",
    [
        ["caller_id.hours.fixed", "caller_id.hours.hidden"],
        ["busy.mobile.queue", "busy.mobile.voicemail"],
        ["activity.both.announcement_voicemail", "activity.mobile.announcement"],
    ],
)
def test_conflicts(ids: list[str]) -> None:
    with pytest.raises(MembershipError):
        CAT.check_membership(ids)


def test_fixed_and_mobile_groups_coexist() -> None:
    CAT.check_membership(
        [
            "activity.fixed.alt_number",
            "activity.mobile.announcement_voicemail",
            "caller_id.hours.fixed",
            "caller_id.internal.mobile",
            "no_answer.fixed.alt_number.30",
            "no_answer.mobile.voicemail.30",
        ]
    )


def test_unknown_group() -> None:
    with pytest.raises(UnknownGroupError, match=r"no_answer\.fixed\.voicemail\.45"):
        CAT.check_membership(["no_answer.fixed.voicemail.45"])


def test_default_catalogue_is_cached() -> None:
    assert load_catalogue() is load_catalogue()


GOOD = """
[[group]]
id = "{id}"
name = "45 sek Fastnr -> Telefonsvar"
name_en = "45 s fixed -> voicemail"
situation = "{situation}"
number = "fixed"
action = "{action}"
{seconds}
description = "test"
"""


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "extra.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_extra_file_adds_a_group(tmp_path: Path) -> None:
    extra = _write(
        tmp_path,
        GOOD.format(
            id="no_answer.fixed.voicemail.45",
            situation="no_answer",
            action="voicemail",
            seconds="seconds = 45",
        ),
    )
    extra2 = tmp_path / "short.toml"
    extra2.write_text(
        GOOD.format(
            id="no_answer.fixed.voicemail.3", situation="no_answer", action="voicemail", seconds="seconds = 3"
        ),
        encoding="utf-8",
    )
    cat = load_catalogue(extra=extra)
    assert len(cat.groups) == 37 and cat.get("no_answer.fixed.voicemail.45").seconds == 45
    assert list(cat.groups)[-1] == "no_answer.fixed.voicemail.45"
    with pytest.raises(MembershipError):
        cat.check_membership(["no_answer.fixed.voicemail.45", "no_answer.both.voicemail.30"])
    assert load_catalogue(extra=extra2).get("no_answer.fixed.voicemail.3").seconds == 3
    assert "no_answer.fixed.voicemail.45" not in load_catalogue()


@pytest.mark.parametrize(
    ("gid", "situation", "action", "seconds", "error"),
    [
        ("lunch.fixed.voicemail", "lunch", "voicemail", "", "unknown situation 'lunch'"),
        ("busy.fixed.dance", "busy", "dance", "", "unknown action 'dance'"),
        ("no_answer.fixed.voicemail.0", "no_answer", "voicemail", "seconds = 0", "seconds"),
        ("no_answer.fixed.voicemail.x", "no_answer", "voicemail", 'seconds = "x"', "seconds"),
        ("no_answer.fixed.voicemail", "no_answer", "voicemail", "", "seconds"),
        ("busy.fixed.voicemail.20", "busy", "voicemail", "seconds = 20", "only no_answer"),
        ("busy.fixed.wrong", "busy", "voicemail", "", "does not match its fields"),
        ("busy.both.voicemail", "busy", "voicemail", "", "duplicate"),
    ],
)
def test_validation_errors_name_the_entry(
    tmp_path: Path, gid: str, situation: str, action: str, seconds: str, error: str
) -> None:
    text = GOOD.format(id=gid, situation=situation, action=action, seconds=seconds)
    if gid == "busy.both.voicemail":
        text = text.replace('number = "fixed"', 'number = "both"')
    with pytest.raises(CatalogueError) as ei:
        load_catalogue(extra=_write(tmp_path, text))
    assert error in str(ei.value)
    assert gid in str(ei.value)


def test_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match="invalid TOML"):
        load_catalogue(extra=_write(tmp_path, "[[group]\n"))
