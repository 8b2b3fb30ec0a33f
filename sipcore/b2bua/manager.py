"""The table of calls: admits new INVITEs (trust, auth, dialled number, policy) and routes every
later message, response and timer to its call. Sans-IO: entry points return actions.

Trust (issue 4 point 1): the PSTN and mobile trunks are trusted by source address *and* port;
every other source must answer a 407 digest challenge, so an unauthenticated peer can never
reach a trunk. The per-user count of established calls (``busy``) spans every device, because
every call of every user passes through this one table.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from policy.numbers import InvalidNumberError, normalise
from policy.plan import CallContext, Plan
from sipcore.builders import make_response
from sipcore.message import NameAddr, Request, Response, Uri
from sipcore.transaction.events import Destination

from .call import Call, CallState
from .config import B2buaConfig
from .events import B2buaAction, Log, Owner, SendResponse, SetTimer
from .leg import Leg, LegKind, LegState
from .media_watch import MEDIA_KEY, MediaWatch
from .queue_handover import Handover, is_queued
from .subscriptions import SUBS_KEY, SubscriptionTable

if TYPE_CHECKING:
    from policy.model import DirectorySnapshot, User
    from sipcore.digest import DigestAuthenticator
    from sipcore.registrar import Binding, LocationService

__all__ = ["CallManager", "Decide"]

Decide = Callable[[CallContext, "DirectorySnapshot", datetime], Plan]

_NO_DIALOG = {"SUBSCRIBE": 489, "NOTIFY": 481}


_SETTLED = frozenset({LegState.ANSWERED, LegState.FAILED, LegState.ENDED})


class CallManager:
    def __init__(
        self,
        config: B2buaConfig,
        *,
        snapshot: Callable[[], DirectorySnapshot],
        decide: Decide,
        location: LocationService,
        auth: DigestAuthenticator,
        wall: Callable[[float], datetime],
    ) -> None:
        self.config = config
        self._snapshot = snapshot
        self._decide = decide
        self._location = location
        self._auth = auth
        self._wall = wall
        self.busy: Counter[str] = Counter()
        self._calls: dict[str, Call] = {}
        self._by_a: dict[tuple[str, str], Call] = {}
        self._by_b: dict[str, tuple[Call, Leg]] = {}
        self._seq = 0
        self.subs = SubscriptionTable(
            config,
            auth=auth,
            credentials=lambda name: self._snapshot().credentials.get(name),
            is_user=lambda name: name in self._snapshot().users,
            contacts=self.contacts,
        )
        self.media_watch = MediaWatch(config)
        self._handovers: dict[str, Handover] = {}  # call ref -> its hand-over in progress
        self._freed: list[str] = []  # users whose last established call just ended
        self._queued: dict[str, dict[str, Call]] = {}  # user -> calls that reached their queue
        self._voicemail_number = self._number(config.voicemail_number)

    # ------------------------------------------------------------------ services for calls

    def snapshot(self) -> DirectorySnapshot:
        return self._snapshot()

    def contacts(self, username: str, now: float) -> list[Binding]:
        snap = self._snapshot()
        seen: dict[str, Binding] = {}
        wall = self._wall(now).timestamp()  # bindings expire in wall-clock seconds
        # Phones register as sip:user@domain or sip:user@<listen address>; ring both.
        for host in (
            snap.company.domain,
            self.config.domain,
            f"{self.config.local_host}:{self.config.local_port}",
            self.config.local_host,
        ):
            for b in self._location.lookup(f"sip:{username}@{host}", wall):
                seen.setdefault(b.key, b)
        return list(seen.values())

    def plan_incoming(
        self,
        username: str,
        caller: str | None,
        caller_user: str | None,
        now: float,
        dialled: str | None = None,
    ) -> Plan:
        """Plan a call to ``username`` that arrived inside Vidare (internal call or forward).

        ``dialled`` selects the fixed or the mobile rules when it is one of the user's numbers
        (a colleague dialling bob's mobile gets bob's mobile rules); otherwise the fixed ones.
        """
        user = self._snapshot().users[username]
        if dialled not in (user.fixed, user.mobile, user.extension) or dialled is None:
            dialled = user.fixed or user.mobile or user.extension
        ctx = CallContext.incoming(
            dialled, caller=caller, caller_user=caller_user, user_busy=self.busy[username] > 0
        )
        return self._decide(ctx, self._snapshot(), self._wall(now))

    def mark_busy(self, username: str, delta: int) -> None:
        self.busy[username] += delta
        if self.busy[username] <= 0:
            del self.busy[username]
            self._freed.append(username)

    def __len__(self) -> int:
        return len(self._calls)

    # ------------------------------------------------------------------ entry points

    def on_request(self, req: Request, source: Destination, now: float) -> list[B2buaAction]:
        method = req.method
        if method == "CANCEL":
            call = self._by_a.get((req.call_id, req.from_.tag or ""))
            out: list[B2buaAction] = []
            if not self.config.layer_answers_cancel:
                out.append(SendResponse(make_response(req, 200 if call else 481), req))
            if call is not None:
                out += self._after(call, call.on_cancel(req, now), now)
            return out
        if method == "SUBSCRIBE":
            return self.subs.on_subscribe(req, source, now)
        if req.to.tag:
            return self._in_dialog(req, now)
        if method == "ACK":
            return []  # stray ACK: nothing to do (RFC 3261 17.2.3 leaves it to the TU)
        if method == "NOTIFY":
            # Message waiting from the media server (its host only: it sends from any port).
            if source.host == self.config.media[0]:
                return self.subs.on_media_notify(req, now)
            return [
                SendResponse(make_response(req, 403), req),
                Log("mwi.untrusted", {"call_id": req.call_id, "source": f"{source.host}:{source.port}"}),
            ]
        if method != "INVITE":
            return [SendResponse(make_response(req, _NO_DIALOG.get(method, 481)), req)]
        if (req.call_id, req.from_.tag or "") in self._by_a:
            return []  # a retransmission that outlived its transaction
        return self._new_invite(req, source, now)

    def on_response(self, resp: Response, owner: Owner | None, now: float) -> list[B2buaAction]:
        if owner is None:
            # Stray: a 2xx retransmission after our INVITE transaction ended must be re-ACKed.
            found = self._by_b.get(resp.call_id)
            if found is None or not 200 <= resp.status < 300 or resp.cseq.method != "INVITE":
                return []
            stray_call, stray_leg = found
            if resp.cseq.number != stray_leg.invite.cseq.number:
                return []  # a re-INVITE's 2xx: its ACK was relayed already
            return self._after(stray_call, stray_call.on_leg_response(stray_leg, resp, now), now)
        call = self._calls.get(owner[0])
        if call is None:
            if owner[0] == SUBS_KEY:
                return self.subs.on_response(owner[1], resp, now)
            if owner[0] == MEDIA_KEY:
                if self.media_watch.on_response(owner[1], resp):
                    return self._media_unreachable(f"keepalive {resp.status}", now)
            return []
        ref = owner[1]
        handover = self._handovers.get(call.ref)
        if handover is not None:
            if ref in handover.legs:
                return self._after(call, handover.on_leg_response(handover.legs[ref], resp, now), now)
            if ref == handover.reinvite_ref:
                return self._after(call, handover.on_reinvite_response(resp, now), now)
        leg = call.legs.get(ref)
        if leg is not None:
            return self._after(call, call.on_leg_response(leg, resp, now), now)
        if ref.startswith("r"):
            out = call.on_relay_response(ref, resp, now)
            winner = call.winner
            if (
                resp.status in (408, 503)
                and winner is not None
                and winner.kind is LegKind.MEDIA
                and call.state is CallState.ANSWERED
            ):
                # An in-dialog request to the media server went unanswered: the leg is dead.
                out += self._end_media_call(call, f"media leg {resp.status}", now)
            return self._after(call, out, now)
        return []  # responses to our CANCELs and BYEs need nothing more

    def on_timer(self, key: str, name: str, now: float) -> list[B2buaAction]:
        call = self._calls.get(key)
        if call is None:
            if key == SUBS_KEY:
                return self.subs.on_timer(name, now)
            if key == MEDIA_KEY:
                out, gone = self.media_watch.on_timer(now, len(self._media_calls()))
                return self._media_unreachable("keepalive unanswered", now) if gone else out
            return []
        if name == "linger":
            self._forget(call)
            return []
        if name == "handover":
            handover = self._handovers.get(key)
            return [] if handover is None else self._after(call, handover.on_timeout(now), now)
        return self._after(call, call.on_timer(name, now), now)

    # ------------------------------------------------------------------ internals

    def _after(self, call: Call, actions: list[B2buaAction], now: float) -> list[B2buaAction]:
        """Index new legs; keep an ended call a while so late responses still find it."""
        for leg in call.legs.values():
            self._by_b.setdefault(leg.invite.call_id, (call, leg))
        winner = call.winner
        if winner is not None and winner.kind is LegKind.MEDIA and call.state is CallState.ANSWERED:
            if not self.media_watch.running:
                actions += self.media_watch.start(now)
            if call.user is not None and winner.invite.uri.user == "queue":
                self._queued.setdefault(call.user, {})[call.ref] = call
        handover = self._handovers.get(call.ref)
        if handover is not None:
            if call.state is CallState.ENDED:
                actions += handover.on_call_ended(now)
            if handover.finished:
                del self._handovers[call.ref]
        if self._freed:
            actions += self._hand_over_queued(now)
        if call.state is CallState.ENDED and not call.lingering:
            call.lingering = True
            # Only a leg still waiting for its final response can send a late 2xx that must be
            # ACKed and BYEd: then keep the call for Timer B. Once every leg has its answer, T4
            # covers retransmitted 2xx (re-ACKed) and stragglers; the transactions absorb the
            # rest on their own. At a thousand calls a second this is most of the memory.
            settled = all(leg.state in _SETTLED for leg in call.legs.values())
            linger = self.config.timers.t4 if settled else self.config.timers.timer_b
            actions.append(SetTimer(call.ref, "linger", now + linger))
        return actions

    def _hand_over_queued(self, now: float) -> list[B2buaAction]:
        """A user is free again: ring them with the oldest caller waiting in their queue."""
        freed, self._freed = self._freed, []
        out: list[B2buaAction] = []
        for user in freed:
            if self.busy[user] > 0 or any(h.user == user for h in self._handovers.values()):
                continue
            queue = self._queued.get(user)
            if not queue:
                continue
            for ref in [r for r, c in queue.items() if not is_queued(c, now)]:
                del queue[ref]  # ended, handed over, or timed out into voicemail
            if not queue:
                del self._queued[user]
                continue
            waiting = list(queue.values())
            contacts = self.contacts(user, now)
            if not contacts:
                continue
            oldest = min(waiting, key=lambda c: c.answered or c.started)
            handover = Handover(oldest, user, self.config.queue_ring_seconds)
            self._handovers[oldest.ref] = handover
            out += self._after(oldest, handover.start(contacts, now), now)
        return out

    def _media_calls(self) -> list[Call]:
        return [
            c
            for c in self._calls.values()
            if c.state is CallState.ANSWERED and c.winner is not None and c.winner.kind is LegKind.MEDIA
        ]

    def _media_unreachable(self, why: str, now: float) -> list[B2buaAction]:
        """The media server is gone: end every call whose leg is there (it restarts meanwhile)."""
        calls = self._media_calls()
        host, port = self.config.media
        out: list[B2buaAction] = [
            Log("media.unreachable", {"address": f"{host}:{port}", "why": why, "calls": len(calls)})
        ]
        for call in calls:
            out += self._after(call, self._end_media_call(call, why, now), now)
        return out

    def _end_media_call(self, call: Call, why: str, now: float) -> list[B2buaAction]:
        if call.state is not CallState.ANSWERED:
            return []
        call.cause = f"media server unreachable ({why})"
        # As if the media server had hung up: BYE to the caller only, then the CDR.
        return call._hangup("b", now)

    def _forget(self, call: Call) -> None:
        self._calls.pop(call.ref, None)
        queue = self._queued.get(call.user or "")
        if queue is not None and queue.pop(call.ref, None) is not None and not queue:
            del self._queued[call.user or ""]
        self._by_a.pop((call.a_invite.call_id, call.a_invite.from_.tag or ""), None)
        for leg in call.legs.values():
            self._by_b.pop(leg.invite.call_id, None)

    def _in_dialog(self, req: Request, now: float) -> list[B2buaAction]:
        call = self._by_a.get((req.call_id, req.from_.tag or ""))
        if call is not None and req.to.tag == call.a_tag:
            return self._after(call, call.on_a_request(req, now), now)
        found = self._by_b.get(req.call_id)
        if found is not None:
            call, leg = found
            return self._after(call, call.on_b_request(leg, req, now), now)
        return [] if req.method == "ACK" else [SendResponse(make_response(req, 481), req)]

    def _resolve(self, snap: DirectorySnapshot, dialled: str) -> tuple[str, str] | None:
        """Dialled text -> (username, the number in E.164 or the extension)."""
        if dialled in snap.by_extension:
            return snap.by_extension[dialled], dialled
        try:
            e164 = normalise(dialled, self.config.region)
        except InvalidNumberError:
            return None
        hit = snap.by_number.get(e164)
        return (hit[0], e164) if hit else None

    def _number(self, text: str | None) -> str | None:
        if not text:
            return None
        try:
            return normalise(text, self.config.region)
        except InvalidNumberError:
            return text

    def _new_invite(self, req: Request, source: Destination, now: float) -> list[B2buaAction]:
        if req.max_forwards is not None and req.max_forwards <= 0:
            return [SendResponse(make_response(req, 483), req)]
        snap = self._snapshot()
        cfg = self.config
        peer = (source.host, source.port)
        trunk = "pstn" if peer == cfg.pstn else "mobile" if peer == cfg.mobile else None
        caller_user: str | None = None
        if trunk is None:
            res = self._auth.verify(req, snap.credentials.get, now, proxy=True)
            if not res.ok:
                headers = self._auth.challenge(now, stale=res.stale, proxy=True)
                return [
                    SendResponse(make_response(req, 407, headers=headers), req),
                    Log(
                        "call.auth_failed",
                        {
                            "call_id": req.call_id,
                            "reason": res.reason,
                            "source": f"{source.host}:{source.port}",
                        },
                    ),
                ]
            caller_user = res.username
        dialled_raw = (req.uri.user_unescaped or "").strip()
        caller_num = self._number(req.from_.uri.user_unescaped)
        if trunk == "mobile" and caller_num is not None:
            hit = snap.by_number.get(caller_num)
            if hit is not None and hit[0] in snap.users and snap.users[hit[0]].mobile == caller_num:
                caller_user = hit[0]  # a user calling out from their mobile
        wall = self._wall(now)
        self._seq += 1
        ref = f"c{self._seq}"
        if caller_user is None:
            return self._incoming(ref, req, source, snap, dialled_raw, caller_num, now, wall)
        return self._outgoing(ref, req, source, snap, caller_user, dialled_raw, trunk is not None, now, wall)

    def _register(self, call: Call) -> None:
        self._calls[call.ref] = call
        self._by_a[(call.a_invite.call_id, call.a_invite.from_.tag or "")] = call

    def _incoming(
        self,
        ref: str,
        req: Request,
        source: Destination,
        snap: DirectorySnapshot,
        dialled: str,
        caller: str | None,
        now: float,
        wall: datetime,
    ) -> list[B2buaAction]:
        found = self._resolve(snap, dialled)
        received = Log(
            "call.received",
            {
                "call_id": req.call_id,
                "direction": "incoming",
                "caller": caller,
                "dialled": dialled,
                "user": None if found is None else found[0],
            },
        )
        if self._voicemail_number is not None and self._number(dialled) == self._voicemail_number:
            vm = self._voicemail_number
            return self._voicemail_access(
                ref, req, source, None, caller or "anonymous", vm, True, received, now, wall
            )
        if found is None:
            return [received, SendResponse(make_response(req, 404), req)]
        username, number = found
        ctx = CallContext.incoming(number, caller=caller, user_busy=self.busy[username] > 0)
        plan = self._decide(ctx, snap, wall)
        call = Call(
            ref,
            self,
            req,
            source,
            trusted=True,
            direction="incoming",
            caller=caller or "anonymous",
            dialled=number,
            now=now,
            wall=wall,
        )
        self._register(call)
        return self._after(call, [received, *call.start(plan, now)], now)

    def _outgoing(
        self,
        ref: str,
        req: Request,
        source: Destination,
        snap: DirectorySnapshot,
        caller_user: str,
        dialled: str,
        trusted: bool,
        now: float,
        wall: datetime,
    ) -> list[B2buaAction]:
        received = Log(
            "call.received",
            {
                "call_id": req.call_id,
                "direction": "outgoing",
                "caller_user": caller_user,
                "dialled": dialled,
                "user": caller_user,
            },
        )
        number = dialled if dialled in snap.by_extension else self._number(dialled)
        if not number:
            return [received, SendResponse(make_response(req, 404), req)]
        if dialled == self.config.voicemail_access_code and not trusted:
            # *98 from the user's own (authenticated) softphone: straight into their box.
            return self._voicemail_access(
                ref, req, source, caller_user, caller_user, dialled, trusted, received, now, wall
            )
        if self._voicemail_number is not None and number == self._voicemail_number:
            return self._voicemail_access(
                ref, req, source, None, caller_user, number, trusted, received, now, wall
            )
        plan = self._decide(CallContext.outgoing(caller_user, number), snap, wall)
        if plan.action == "reject":
            return [
                received,
                Log("route.decided", {"call_id": req.call_id, "plan": plan.to_json()}),
                SendResponse(make_response(req, plan.cause or 403), req),
            ]
        user = snap.users.get(caller_user)
        pres = plan.presentation
        shown = pres.number if pres is not None else (user.fixed if user else None)
        call = Call(
            ref,
            self,
            req,
            source,
            trusted=trusted,
            direction="internal" if plan.target_user else "outgoing",
            caller=shown or caller_user,
            dialled=number,
            now=now,
            wall=wall,
        )
        call.caller_user = caller_user
        call.b_from, call.extra_b_headers = _identity(
            self.config.domain, user, pres, toward_trunk=plan.target_user is None
        )
        self._register(call)
        if plan.target_user is not None:
            # An internal call is an incoming call to the other user, under their rules.
            out: list[B2buaAction] = [
                received,
                Log(
                    "route.decided",
                    {
                        "call_id": req.call_id,
                        "user": caller_user,
                        "plan": plan.to_json(),
                        "explanation": [str(s) for s in plan.explanation],
                    },
                ),
            ]
            inner = self.plan_incoming(plan.target_user, shown, caller_user, now, plan.target)
            return self._after(call, out + call.start(inner, now), now)
        return self._after(call, [received, *call.start(plan, now)], now)

    def _voicemail_access(
        self,
        ref: str,
        req: Request,
        source: Destination,
        user: str | None,
        caller: str,
        dialled: str,
        trusted: bool,
        received: Log,
        now: float,
        wall: datetime,
    ) -> list[B2buaAction]:
        """A call to ``sip:voicemail-access@<media>``; ``X-Vidare-User`` only for an
        authenticated softphone dialling the access code (the media server then skips the PIN)."""
        call = Call(
            ref,
            self,
            req,
            source,
            trusted=trusted,
            direction="internal" if user else "incoming",
            caller=caller,
            dialled=dialled,
            now=now,
            wall=wall,
        )
        call.caller_user = user
        call.user = user
        call.first_user = user
        self._register(call)
        host, port = self.config.media
        uri = Uri(user="voicemail-access", host=host, port=port)
        headers = [("X-Vidare-User", user)] if user else []
        decided = Log(
            "route.decided",
            {
                "call_id": req.call_id,
                "user": user,
                "action": "voicemail_access",
                "explanation": [
                    f"{dialled} is the voicemail access "
                    + ("code, from the user's own softphone" if user else "number: the caller gives a PIN")
                ],
            },
        )
        _leg, acts = call.new_leg(LegKind.MEDIA, uri, Destination(host, port), headers=headers)
        forwarded = Log(
            "call.forwarded", {"call_id": req.call_id, "to": str(uri), "service": "voicemail-access"}
        )
        return self._after(call, [received, decided, forwarded, *acts], now)


def _identity(
    domain: str, user: User | None, pres: object, *, toward_trunk: bool
) -> tuple[NameAddr, list[tuple[str, str]]]:
    """From and identity headers per the caller-ID decision (SPEC 4, RFC 3325/3323)."""
    from policy.plan import Presentation

    display = f'"{user.display_name}"' if user is not None else None
    if not isinstance(pres, Presentation):
        number = user.fixed if user is not None and user.fixed else "anonymous"
        return NameAddr(Uri(user=number, host=domain), display=display), []
    if pres.privacy:
        headers = [("Privacy", "id")]
        if toward_trunk and pres.asserted:
            # The true identity goes only to the trusted trunk, which removes it on the way out.
            headers.insert(0, ("P-Asserted-Identity", f"<sip:{pres.asserted}@{domain}>"))
        return NameAddr(Uri(user="anonymous", host="anonymous.invalid"), display='"Anonymous"'), headers
    number = pres.number or "anonymous"
    headers = (
        [("P-Asserted-Identity", f"{display + ' ' if display else ''}<sip:{number}@{domain}>")]
        if toward_trunk
        else []
    )
    return NameAddr(Uri(user=number, host=domain), display=display), headers
