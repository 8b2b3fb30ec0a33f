"""Bugs the end-to-end tests (tests/interop/test_calls_more.py, test_caller_id.py) found, pinned."""

from __future__ import annotations

from b2bua_harness import MEDIA, MOBILE, B2bua
from policy_fixtures import with_user

from policy.model import Activity, ActivityKind, CallerIdRole

MOBILE_PAI = ("P-Asserted-Identity", "<sip:+46701001001@mobile.example>")


def test_call_from_users_mobile_carries_only_vidares_identity() -> None:
    """The mobile network asserts the caller's mobile number; toward the PSTN only Vidare's
    assertion of the caller-ID role (fixed) goes out, once."""
    h = B2bua()
    h.invite("+4687654321", caller="+46701001001", source=MOBILE, headers=[MOBILE_PAI])
    (out,) = h.invites_to()
    assert out.request.header_values("P-Asserted-Identity") == [
        '"Alice Andersson" <sip:+4681001001@demo.test>'
    ]


def test_hidden_call_from_users_mobile_has_one_privacy_and_one_pai() -> None:
    h = B2bua()
    h.snap = with_user(h.snap, "alice", caller_id_role=CallerIdRole.HIDDEN)
    h.invite(
        "+4687654321",
        caller="+46701001001",
        source=MOBILE,
        headers=[MOBILE_PAI, ("Privacy", "id")],
    )
    (out,) = h.invites_to()
    assert out.request.header_values("P-Asserted-Identity") == ["<sip:+4681001001@demo.test>"]
    assert out.request.header_values("Privacy") == ["id"]
    assert out.request.from_.uri.user == "anonymous"


def test_incoming_trunk_identity_still_reaches_the_mobile_leg() -> None:
    """Only calls out are re-asserted: an incoming call's trunk PAI still crosses to trusted legs."""
    h = B2bua()
    h.invite("+4681001002", caller="+46812345678", headers=[("P-Asserted-Identity", "<sip:+46812345678@x>")])
    mobile = h.invites_to((MOBILE.host, MOBILE.port))[0].request
    assert mobile.header_values("P-Asserted-Identity") == ["<sip:+46812345678@x>"]


def test_internal_call_to_the_mobile_number_applies_the_mobile_rules() -> None:
    h = B2bua()
    h.snap = with_user(
        h.snap,
        "bob",
        activity=Activity(ActivityKind.LUNCH),
        groups={"activity.mobile.voicemail", "no_answer.both.voicemail.30"},
    )
    h.invite("+46701001002", caller="+46701001001", source=MOBILE)  # alice's mobile calls bob's
    assert [(s.dest.host, s.dest.port) for s in h.invites_to()] == [MEDIA]


def test_forward_from_the_mobile_number_names_the_mobile_number_as_diverting() -> None:
    """A call to bob's mobile number forwarded to the alternative number: Diversion and
    History-Info name the number the caller dialled, not bob's fixed number."""
    h = B2bua()
    h.snap = with_user(
        h.snap,
        "bob",
        activity=Activity(ActivityKind.LUNCH),
        groups={"activity.mobile.alt_number", "no_answer.both.voicemail.30"},
    )
    h.invite("+46701001002")
    (out,) = h.invites_to()
    assert out.request.header("Diversion") == "<sip:+46701001002@demo.test>;reason=unconditional;counter=1"
    assert (out.request.header("History-Info") or "").startswith("<sip:+46701001002@demo.test?Reason=")
