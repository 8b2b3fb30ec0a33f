"""Message waiting (RFC 3842 over RFC 6665): ``message-summary`` subscriptions and the relay of
the media server's NOTIFYs. Sans-IO, in memory: a table of subscriptions; every entry point
returns actions (``events.py``), expiry runs on timers the glue arms.

- A softphone SUBSCRIBEs to its own AOR (``Event: message-summary``), authenticated with the
  same digest as REGISTER (401 challenge; ``Proxy-Authorization`` is accepted too). 200 with
  ``Expires``, then at once a NOTIFY with the last known state of the box (``Messages-Waiting:
  no`` until the media server has reported). A refresh within the dialog re-arms the expiry and
  notifies again; ``Expires: 0`` or expiry ends it with a NOTIFY ``terminated;reason=timeout``.
  A NOTIFY answered 481/408 (or that times out) ends the subscription (RFC 6665 4.2.2).
- The media server's NOTIFY (``NOTIFY sip:<user>@<domain>``, out of dialog, from the media
  host) is answered 200, remembered per user, and relayed as a NOTIFY within each of that
  user's subscription dialogs; with ``unsolicited_mwi`` also out of dialog to every registered
  contact. The manager trusts only NOTIFYs from the media server's host (its MWI sender uses an
  ephemeral port, so the port is not checked).

Timers: key ``SUBS_KEY``, name ``x:<subscription ref>``. Transaction owners: ``(SUBS_KEY, ref)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sipcore.builders import make_response, new_branch, new_call_id, new_tag
from sipcore.dialog import Dialog
from sipcore.message import CSeq, NameAddr, Request, Response, Uri, Via
from sipcore.transaction.events import Destination

from .config import B2buaConfig
from .events import B2buaAction, CancelTimer, Log, SendRequest, SendResponse, SetTimer
from .leg import dest_of

if TYPE_CHECKING:
    from policy.model import SipCredentials
    from sipcore.digest import DigestAuthenticator
    from sipcore.registrar import Binding

__all__ = ["EVENT", "SUBS_KEY", "Subscription", "SubscriptionTable"]

SUBS_KEY = "mwi"
EVENT = "message-summary"
CONTENT_TYPE = "application/simple-message-summary"
# Responses to our NOTIFY that end the subscription (RFC 6665 4.2.2, RFC 5057).
_FATAL = frozenset({404, 405, 408, 410, 416, 480, 481, 482, 483, 484, 485, 489, 501, 604})


@dataclass(slots=True)
class Subscription:
    ref: str
    username: str
    dialog: Dialog
    dest: Destination
    expires_at: float
    notifies: int = 0
    pending: set[str] = field(default_factory=set)  # NOTIFY transaction refs awaiting an answer


def _event_package(req: Request) -> str | None:
    value = req.header("Event")
    return None if value is None else value.split(";", 1)[0].strip().lower()


class SubscriptionTable:
    def __init__(
        self,
        config: B2buaConfig,
        *,
        auth: DigestAuthenticator,
        credentials: Callable[[str], SipCredentials | None],
        is_user: Callable[[str], bool],
        contacts: Callable[[str, float], list[Binding]],
    ) -> None:
        self.config = config
        self._auth = auth
        self._credentials = credentials
        self._is_user = is_user
        self._contacts = contacts
        self.subs: dict[str, Subscription] = {}
        self._by_dialog: dict[tuple[str, str], Subscription] = {}  # (Call-ID, our tag)
        self._by_user: dict[str, dict[str, Subscription]] = {}
        self.state: dict[str, bytes] = {}  # username -> the last message-summary body
        self._seq = 0
        self.local_contact = NameAddr(Uri(user="vidare", host=config.local_host, port=config.local_port))

    def __len__(self) -> int:
        return len(self.subs)

    def _next(self, prefix: str) -> str:
        self._seq += 1
        return f"{prefix}{self._seq}"

    def _via(self, dest: Destination) -> Via:
        cfg = self.config
        return Via(dest.transport, cfg.local_host, cfg.local_port, {"branch": new_branch(), "rport": None})

    def body_for(self, username: str) -> bytes:
        known = self.state.get(username)
        if known is not None:
            return known
        return f"Messages-Waiting: no\r\nMessage-Account: sip:{username}@{self.config.domain}\r\n".encode()

    def for_user(self, username: str) -> list[Subscription]:
        return list(self._by_user.get(username, {}).values())

    # ------------------------------------------------------------------ SUBSCRIBE

    def on_subscribe(self, req: Request, source: Destination, now: float) -> list[B2buaAction]:
        if _event_package(req) != EVENT:
            return [SendResponse(make_response(req, 489, headers=[("Allow-Events", EVENT)]), req)]
        expires = self._expires(req)
        if expires is not None and 0 < expires < self.config.subscribe_min_expires:
            return [
                SendResponse(
                    make_response(
                        req, 423, headers=[("Min-Expires", str(self.config.subscribe_min_expires))]
                    ),
                    req,
                )
            ]
        if expires is None:
            expires = self.config.subscribe_max_expires
        expires = min(expires, self.config.subscribe_max_expires)
        if req.to.tag:
            return self._refresh(req, expires, now)
        return self._new(req, source, expires, now)

    def _expires(self, req: Request) -> int | None:
        text = req.header("Expires")
        if text is None:
            return None
        try:
            return max(0, int(text.strip()))
        except ValueError:
            return None

    def _new(self, req: Request, source: Destination, expires: int, now: float) -> list[B2buaAction]:
        result = self._auth.verify(req, self._credentials, now)
        if not result.ok and req.header("Proxy-Authorization") is not None:
            result = self._auth.verify(req, self._credentials, now, proxy=True)
        if not result.ok:
            return [
                SendResponse(
                    make_response(req, 401, headers=self._auth.challenge(now, stale=result.stale)), req
                ),
                Log(
                    "mwi.auth_failed",
                    {
                        "call_id": req.call_id,
                        "reason": result.reason,
                        "source": f"{source.host}:{source.port}",
                    },
                ),
            ]
        username = result.username or ""
        wanted = req.uri.user_unescaped or req.to.uri.user_unescaped or ""
        if not self._is_user(wanted):
            return [SendResponse(make_response(req, 404), req)]
        if wanted != username:
            # Only one's own box: alice may not watch bob's voicemail.
            return [
                SendResponse(make_response(req, 403), req),
                Log("mwi.forbidden", {"call_id": req.call_id, "user": username, "box": wanted}),
            ]
        tag = new_tag()
        dialog = Dialog.uas(req, tag, self.local_contact)
        dialog.confirm()
        sub = Subscription(
            self._next("s"), username, dialog, dest_of(dialog.next_hop(), source), now + expires
        )
        resp = make_response(req, 200, to_tag=tag, headers=[("Expires", str(expires))])
        resp.contact = [self.local_contact.copy()]
        out: list[B2buaAction] = [
            SendResponse(resp, req),
            Log(
                "mwi.subscribed",
                {"user": username, "sub": sub.ref, "expires": expires, "call_id": req.call_id},
            ),
        ]
        if expires == 0:
            # A fetch (RFC 6665 4.4.3): one NOTIFY with the state, and no subscription.
            return [*out, self._notify(sub, now, terminated=True)]
        self._add(sub)
        out.append(self._notify(sub, now))
        out.append(SetTimer(SUBS_KEY, f"x:{sub.ref}", sub.expires_at))
        return out

    def _refresh(self, req: Request, expires: int, now: float) -> list[B2buaAction]:
        sub = self._by_dialog.get((req.call_id, req.to.tag or ""))
        if sub is None:
            return [SendResponse(make_response(req, 481), req)]
        err = sub.dialog.receive_request(req)
        if err is not None:
            return [SendResponse(make_response(req, err), req)]
        resp = make_response(req, 200, headers=[("Expires", str(expires))])
        resp.contact = [self.local_contact.copy()]
        out: list[B2buaAction] = [SendResponse(resp, req)]
        if expires == 0:
            self._remove(sub)
            return [
                *out,
                CancelTimer(SUBS_KEY, f"x:{sub.ref}"),
                self._notify(sub, now, terminated=True),
                Log("mwi.unsubscribed", {"user": sub.username, "sub": sub.ref}),
            ]
        sub.expires_at = now + expires
        return [*out, self._notify(sub, now), SetTimer(SUBS_KEY, f"x:{sub.ref}", sub.expires_at)]

    def _add(self, sub: Subscription) -> None:
        self.subs[sub.ref] = sub
        self._by_dialog[(sub.dialog.id.call_id, sub.dialog.id.local_tag)] = sub
        self._by_user.setdefault(sub.username, {})[sub.ref] = sub

    def _remove(self, sub: Subscription) -> None:
        self.subs.pop(sub.ref, None)
        self._by_dialog.pop((sub.dialog.id.call_id, sub.dialog.id.local_tag), None)
        mine = self._by_user.get(sub.username)
        if mine is not None:
            mine.pop(sub.ref, None)
            if not mine:
                del self._by_user[sub.username]

    def _notify(self, sub: Subscription, now: float, *, terminated: bool = False) -> SendRequest:
        if terminated:
            state = "terminated;reason=timeout"
        else:
            state = f"active;expires={max(0, round(sub.expires_at - now))}"
        req = sub.dialog.new_request(
            "NOTIFY",
            self._via(sub.dest),
            body=self.body_for(sub.username),
            headers=[("Event", EVENT), ("Subscription-State", state), ("Content-Type", CONTENT_TYPE)],
        )
        sub.notifies += 1
        tx = f"{sub.ref}:{sub.notifies}"
        sub.pending.add(tx)
        return SendRequest(req, sub.dest, (SUBS_KEY, tx))

    # ------------------------------------------------------------------ the media server's NOTIFY

    def on_media_notify(self, req: Request, now: float) -> list[B2buaAction]:
        if _event_package(req) != EVENT:
            return [SendResponse(make_response(req, 489, headers=[("Allow-Events", EVENT)]), req)]
        username = req.uri.user_unescaped or ""
        if not self._is_user(username):
            return [SendResponse(make_response(req, 404), req)]
        self.state[username] = req.body
        out: list[B2buaAction] = [SendResponse(make_response(req, 200, to_tag=new_tag()), req)]
        subs = self.for_user(username)
        for sub in subs:
            out.append(self._notify(sub, now))
        unsolicited = 0
        if self.config.unsolicited_mwi:
            for b in self._contacts(username, now):
                out.append(self._unsolicited(username, b, req.body))
                unsolicited += 1
        summary = req.body.decode("utf-8", "replace").replace("\r\n", "; ").strip("; ")
        out.append(
            Log(
                "mwi.relayed",
                {
                    "user": username,
                    "subscriptions": len(subs),
                    "unsolicited": unsolicited,
                    "summary": summary,
                },
            )
        )
        return out

    def _unsolicited(self, username: str, b: Binding, body: bytes) -> SendRequest:
        cfg = self.config
        uri = b.contact.uri.copy()
        dest = Destination(b.source.host, b.source.port, b.source.transport) if b.source else dest_of(uri)
        req = Request(
            method="NOTIFY",
            uri=uri,
            via=[self._via(dest)],
            from_=NameAddr(Uri(user="voicemail", host=cfg.domain), params={"tag": new_tag()}),
            to=NameAddr(Uri(user=username, host=cfg.domain)),
            call_id=new_call_id(cfg.local_host),
            cseq=CSeq(1, "NOTIFY"),
            max_forwards=70,
            contact=[self.local_contact.copy()],
            headers=[("Event", EVENT), ("Subscription-State", "active"), ("Content-Type", CONTENT_TYPE)],
            body=body,
        )
        return SendRequest(req, dest, (SUBS_KEY, self._next("u")))

    # ------------------------------------------------------------------ responses and timers

    def on_response(self, tx: str, resp: Response, now: float) -> list[B2buaAction]:
        if resp.status < 200:
            return []
        ref = tx.split(":", 1)[0]
        sub = self.subs.get(ref)
        if sub is None:
            if resp.status >= 300:
                return [Log("mwi.notify_failed", {"tx": tx, "status": resp.status})]
            return []
        sub.pending.discard(tx)
        if resp.status in _FATAL:
            self._remove(sub)
            return [
                CancelTimer(SUBS_KEY, f"x:{sub.ref}"),
                Log("mwi.subscription_ended", {"user": sub.username, "sub": sub.ref, "status": resp.status}),
            ]
        return []

    def on_timer(self, name: str, now: float) -> list[B2buaAction]:
        if not name.startswith("x:"):
            return []
        sub = self.subs.get(name[2:])
        if sub is None:
            return []
        if sub.expires_at > now:
            return [SetTimer(SUBS_KEY, name, sub.expires_at)]  # refreshed meanwhile
        self._remove(sub)
        return [
            self._notify(sub, now, terminated=True),
            Log("mwi.expired", {"user": sub.username, "sub": sub.ref}),
        ]
