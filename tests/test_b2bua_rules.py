"""The policy plan carried out by the B2BUA: busy, activity, alternative numbers, calls out."""

from __future__ import annotations

from urllib.parse import unquote

import pytest
from b2bua_harness import MEDIA, MOBILE, PSTN, SDP, SOFTPHONE, B2bua, authorize, with_credentials
from policy_fixtures import at, with_user

from policy.model import Activity, ActivityKind, CallerIdRole
from sipcore.transaction.events import Destination

PHONE = Destination("127.0.0.1", 6001)  # a softphone calling out (not a trunk)
DEFAULTS_NO_BUSY = {"activity.both.announcement_voicemail", "no_answer.both.voicemail.30"}


def _answered(h: B2bua, to: str = "+4681001002") -> None:
    invite = h.invite(to)
    h.answer(h.invites_to((SOFTPHONE.host, SOFTPHONE.port))[-1], 200, body=SDP)
    h.in_dialog(invite, "ACK")


def test_busy_without_call_waiting_goes_straight_to_voicemail() -> None:
    h = B2bua()
    h.snap = with_user(h.snap, "bob", groups=DEFAULTS_NO_BUSY | {"busy.fixed.voicemail_no_waiting"})
    h.register("bob")
    _answered(h)
    assert h.mgr.busy["bob"] == 1
    before = len(h.invites_to())
    h.invite("+4681001002")
    new = h.invites_to()[before:]
    assert [(s.dest.host, s.dest.port) for s in new] == [MEDIA]
    assert new[0].request.uri.params["cause"] == "486"
    assert h.events("route.decided")[-1]["decided_by"] == "busy.fixed.voicemail_no_waiting"


def test_busy_with_call_waiting_still_rings_the_devices() -> None:
    h = B2bua()
    h.register("bob")
    _answered(h)
    before = len(h.invites_to())
    h.invite("+4681001002")
    assert {(s.dest.host, s.dest.port) for s in h.invites_to()[before:]} == {
        (SOFTPHONE.host, SOFTPHONE.port),
        (MOBILE.host, MOBILE.port),
    }


def test_activity_announcement_then_voicemail_tells_the_media_server_why() -> None:
    h = B2bua()
    until = at("2026-11-23T14:30:00")
    h.snap = with_user(h.snap, "bob", activity=Activity(ActivityKind.MEETING, until))
    h.register("bob")
    h.invite("+4681001002")
    (media,) = h.invites_to()
    assert (media.dest.host, media.dest.port) == MEDIA
    req = media.request
    assert req.uri.user == "announcement_voicemail" and req.uri.params["cause"] == "302"
    assert req.header("X-Vidare-Activity") == "meeting"
    assert req.header("X-Vidare-Return") == until.isoformat()
    assert req.header("X-Vidare-Play-Activity") == "yes"


def test_activity_to_external_alternative_number_leaves_through_pstn_with_diversion() -> None:
    h = B2bua()
    h.snap = with_user(
        h.snap,
        "bob",
        activity=Activity(ActivityKind.LUNCH),
        groups={"activity.fixed.alt_number", "no_answer.both.voicemail.30", "busy.both.voicemail"},
    )
    h.invite("+4681001002")
    (out,) = h.invites_to()
    assert (out.dest.host, out.dest.port) == (PSTN.host, PSTN.port)
    assert str(out.request.uri) == "sip:+4681000000@127.0.0.1:5070"
    assert out.request.header("Diversion") == "<sip:+4681001002@demo.test>;reason=unconditional;counter=1"
    assert "index=1.1" in (out.request.header("History-Info") or "")


def test_internal_alternative_number_is_a_new_call_under_that_users_rules() -> None:
    h = B2bua()
    groups = {"activity.fixed.alt_number", "no_answer.both.voicemail.30", "busy.both.voicemail"}
    h.snap = with_user(h.snap, "bob", activity=Activity(ActivityKind.AWAY), groups=groups, alt_number="1003")
    h.invite("+4681001002")
    (out,) = h.invites_to()
    assert str(out.request.uri) == "sip:+46701001003@127.0.0.1:5080"  # carol's mobile leg
    # carol's no-answer timer now runs; when it fires, carol's voicemail gets the call.
    h.advance(30.1)
    media = h.invites_to(MEDIA)
    assert unquote(media[0].request.uri.params["target"] or "") == "sip:carol@demo.test"


def test_a_chain_of_forwards_names_every_diversion_on_the_last_leg() -> None:
    """bob (away) -> carol (away) -> an external number: the INVITE to the PSTN carries both
    diversions, the most recent first (RFC 5806), and History-Info 1 / 1.1 / 1.1.1 (RFC 7044);
    carol's own leg (had she rung) would have carried bob's already."""
    h = B2bua()
    groups = {"activity.fixed.alt_number", "no_answer.both.voicemail.30", "busy.both.voicemail"}
    h.snap = with_user(h.snap, "bob", activity=Activity(ActivityKind.AWAY), groups=groups, alt_number="1003")
    h.snap = with_user(
        h.snap, "carol", activity=Activity(ActivityKind.AWAY), groups=groups, alt_number="+4687777777"
    )
    h.invite("+4681001002")
    (out,) = h.invites_to()
    assert out.dest == PSTN
    assert out.request.header("Diversion") == (
        "<sip:+4681001003@demo.test>;reason=unconditional;counter=1, "
        "<sip:+4681001002@demo.test>;reason=unconditional;counter=1"
    )
    assert out.request.header("History-Info") == (
        "<sip:+4681001002@demo.test?Reason=SIP%3Bcause%3D302>;index=1, "
        "<sip:+4681001003@demo.test?Reason=SIP%3Bcause%3D302>;index=1.1;mp=1, "
        f"<{out.request.uri}>;index=1.1.1;mp=1.1"
    )


def test_an_internal_forward_rings_the_new_user_with_the_diversion_on_the_leg() -> None:
    h = B2bua()
    groups = {"activity.fixed.alt_number", "no_answer.both.voicemail.30", "busy.both.voicemail"}
    h.snap = with_user(h.snap, "bob", activity=Activity(ActivityKind.AWAY), groups=groups, alt_number="1003")
    h.invite("+4681001002")
    (out,) = h.invites_to()  # carol's mobile
    assert out.request.header("Diversion") == "<sip:+4681001002@demo.test>;reason=unconditional;counter=1"
    assert (out.request.header("History-Info") or "").endswith(f"<{out.request.uri}>;index=1.1;mp=1")


def test_forwarding_loop_is_broken_to_the_first_users_voicemail() -> None:
    h = B2bua()
    groups = {"activity.fixed.alt_number", "no_answer.both.voicemail.30", "busy.both.voicemail"}
    h.snap = with_user(h.snap, "bob", activity=Activity(ActivityKind.AWAY), groups=groups, alt_number="1003")
    h.snap = with_user(
        h.snap, "carol", activity=Activity(ActivityKind.AWAY), groups=groups, alt_number="1002"
    )
    h.invite("+4681001002")
    (media,) = h.invites_to()
    assert (media.dest.host, media.dest.port) == MEDIA
    assert media.request.uri.user == "voicemail"
    assert unquote(media.request.uri.params["target"] or "") == "sip:bob@demo.test"
    assert h.events("call.loop")


def test_unauthenticated_invite_toward_pstn_gets_407_and_no_trunk_traffic() -> None:
    h = B2bua()
    invite = h.invite("+4687654321", caller="bob", source=PHONE)
    assert h.statuses_to(invite) == [407]
    assert any(n == "Proxy-Authenticate" for n, _ in h.responses[-1].response.headers)
    assert h.requests == []


def _call_out(h: B2bua, to: str, user: str = "bob", password: str = "bob-demo") -> None:
    h.snap = with_credentials(h.snap, {user: password})
    first = h.invite(to, caller=user, source=PHONE)
    challenge = h.responses[-1].response
    assert challenge.status == 407
    second = first
    second.via[0].params["branch"] = "z9hG4bK-second"
    second.cseq = type(first.cseq)(2, "INVITE")
    authorize(challenge, second, user, password)
    h.run(h.mgr.on_request(second, PHONE, h.now))


def test_authenticated_softphone_calls_out_with_its_fixed_number() -> None:
    h = B2bua()
    _call_out(h, "+4687654321")
    (out,) = h.invites_to()
    assert (out.dest.host, out.dest.port) == (PSTN.host, PSTN.port)
    assert str(out.request.uri) == "sip:+4687654321@127.0.0.1:5070"
    assert out.request.from_.uri.user == "+4681001002"
    assert out.request.header("P-Asserted-Identity") == '"Bob Berg" <sip:+4681001002@demo.test>'
    assert out.request.header("Privacy") is None


def test_hidden_caller_id_is_anonymous_with_the_true_identity_only_in_pai() -> None:
    h = B2bua()
    h.snap = with_user(h.snap, "bob", caller_id_role=CallerIdRole.HIDDEN)
    _call_out(h, "+4687654321")
    (out,) = h.invites_to()
    assert out.request.from_.uri.user == "anonymous" and out.request.from_.uri.host == "anonymous.invalid"
    assert out.request.header("Privacy") == "id"
    assert out.request.header("P-Asserted-Identity") == "<sip:+4681001002@demo.test>"


@pytest.mark.parametrize(
    ("role", "shown"), [(CallerIdRole.MOBILE, "+46701001002"), (CallerIdRole.FIXED, "+4681001002")]
)
def test_caller_id_role_sets_from(role: CallerIdRole, shown: str) -> None:
    h = B2bua()
    h.snap = with_user(h.snap, "bob", caller_id_role=role)
    _call_out(h, "+4687654321")
    assert h.invites_to()[0].request.from_.uri.user == shown


def test_internal_call_rings_the_other_user_under_their_rules() -> None:
    h = B2bua()
    h.register("carol", Destination("127.0.0.1", 6003))
    _call_out(h, "1003")
    targets = {(s.dest.host, s.dest.port) for s in h.invites_to()}
    assert targets == {("127.0.0.1", 6003), (MOBILE.host, MOBILE.port)}
    assert all(s.request.header("P-Asserted-Identity") is None for s in h.invites_to())
    assert h.invites_to()[0].request.from_.uri.user == "+4681001002"


def test_call_from_users_mobile_via_mobile_trunk_goes_out_through_pstn() -> None:
    h = B2bua()
    h.invite("+4687654321", caller="+46701001001", source=MOBILE)
    (out,) = h.invites_to()
    assert (out.dest.host, out.dest.port) == (PSTN.host, PSTN.port)
    assert out.request.from_.uri.user == "+4681001001"  # alice's fixed number, her default role


def test_answered_outgoing_call_makes_the_caller_busy() -> None:
    h = B2bua()
    h.invite("+4687654321", caller="+46701001001", source=MOBILE)
    h.answer(h.invites_to()[0], 200, body=SDP)
    assert h.mgr.busy["alice"] == 1


def test_withheld_caller_identity_from_the_trunk_does_not_reach_softphones() -> None:
    h = B2bua()
    h.register("bob")
    h.invite(
        "+4681001002",
        caller="anonymous",
        headers=[("P-Asserted-Identity", "<sip:+46812345678@pstn.example>"), ("Privacy", "id")],
    )
    soft = h.invites_to((SOFTPHONE.host, SOFTPHONE.port))[0].request
    mobile = h.invites_to((MOBILE.host, MOBILE.port))[0].request
    assert soft.header("P-Asserted-Identity") is None and soft.header("Privacy") == "id"
    assert mobile.header("P-Asserted-Identity") == "<sip:+46812345678@pstn.example>"
