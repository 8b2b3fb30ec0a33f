"""Personal queue hand-over (RFC 3725 flow I): what the end-to-end test with real pjsua2 phones
(tests/interop/test_queue_e2e.py) exposed."""

from __future__ import annotations

from b2bua_harness import SOFTPHONE
from test_b2bua_subscriptions import _harness, _queued


def test_the_cdr_of_a_handed_over_call_says_who_hung_up_not_the_forwarding_cause() -> None:
    h = _harness(media_keepalive=0)
    first, second, _queue = _queued(h)
    before = len(h.invites_to())
    h.in_dialog(first, "BYE", cseq=2)
    (ring,) = h.invites_to()[before:]
    h.answer(ring, 200, body=b"v=0\r\no=bob 2 2 IN IP4 127.0.0.1\r\n")
    (reinvite,) = [r for r in h.sent("INVITE") if r.request.call_id == second.call_id]
    h.answer(reinvite, 200, body=b"v=0\r\no=caller 3 3 IN IP4 127.0.0.1\r\n")
    assert h.events("queue.handed_over")
    h.in_dialog(second, "BYE", cseq=3)
    record = h.cdrs[-1].record
    assert record.call_id == second.call_id
    assert record.outcome == "answered" and record.cause == "caller hung up"  # was "486"


def test_a_caller_past_the_queue_max_wait_is_in_voicemail_and_is_not_handed_over() -> None:
    """After ``media.queue_max_wait`` the media server moves the caller to voicemail in the same
    dialog: when the user becomes free then, ringing them would cut the message short."""
    h = _harness(media_keepalive=0, queue_max_wait=10.0)
    first, _second, queue = _queued(h)
    h.advance(11)  # the media server has timed the caller out: it is recording a message
    before = len(h.invites_to())
    h.in_dialog(first, "BYE", cseq=2)
    assert "bob" not in h.mgr.busy
    ringing = [
        r for r in h.invites_to()[before:] if (r.dest.host, r.dest.port) == (SOFTPHONE.host, SOFTPHONE.port)
    ]
    assert not ringing
    assert not h.events("queue.handover_started")
    assert not [r for r in h.sent("BYE") if r.request.call_id == queue.request.call_id]


def test_a_caller_within_the_queue_max_wait_is_handed_over() -> None:
    h = _harness(media_keepalive=0, queue_max_wait=10.0)
    first, _second, _queue = _queued(h)
    h.advance(8)
    before = len(h.invites_to())
    h.in_dialog(first, "BYE", cseq=2)
    (ring,) = h.invites_to()[before:]
    assert (ring.dest.host, ring.dest.port) == (SOFTPHONE.host, SOFTPHONE.port)
    assert h.events("queue.handover_started")
