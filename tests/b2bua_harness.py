"""Test driver for the B2BUA core: a fake clock, the real policy and registrar, no sockets.

``B2bua`` plays the glue (STYLE item 13): it records what the core sends, keeps timer deadlines,
and ``advance(seconds)`` fires every timer that falls due, in order. Peers are simulated by
building responses to the requests the core sent (``answer``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from policy_fixtures import at, demo_snapshot

from policy.decide import decide
from policy.model import DirectorySnapshot
from sipcore.b2bua import B2buaConfig, CallManager
from sipcore.b2bua.events import B2buaAction, CancelTimer, Log, SendRequest, SendResponse, SetTimer, WriteCdr
from sipcore.builders import make_response, new_tag
from sipcore.digest import DigestAuthenticator
from sipcore.message import CSeq, NameAddr, Request, Response, Uri, Via
from sipcore.registrar import Added, Binding, LocationService, Source
from sipcore.transaction.events import Destination

PSTN = Destination("127.0.0.1", 5070)
MOBILE = Destination("127.0.0.1", 5080)
MEDIA = ("127.0.0.1", 5090)
SOFTPHONE = Destination("127.0.0.1", 6000)
SDP = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0\r\n"
T0 = 1000.0
MONDAY_10 = at("2026-11-23T10:00:00")

CONFIG = B2buaConfig(
    local_host="127.0.0.1",
    local_port=5060,
    domain="demo.test",
    pstn=("127.0.0.1", 5070),
    mobile=("127.0.0.1", 5080),
    media=MEDIA,
)


class B2bua:
    def __init__(self, snapshot: DirectorySnapshot | None = None, wall: datetime = MONDAY_10) -> None:
        self.now = T0
        self.snap = snapshot or demo_snapshot()
        self.location = LocationService()
        self.auth = DigestAuthenticator("demo.test", secret=b"test-secret")
        self.wall0 = wall
        self.mgr = CallManager(
            CONFIG,
            snapshot=lambda: self.snap,
            decide=decide,
            location=self.location,
            auth=self.auth,
            wall=lambda now: self.wall0 + timedelta(seconds=now - T0),
        )
        self.timers: dict[tuple[str, str], float] = {}
        self.requests: list[SendRequest] = []
        self.responses: list[SendResponse] = []
        self.logs: list[Log] = []
        self.cdrs: list[WriteCdr] = []

    # -- the glue's part ------------------------------------------------------------------------

    def run(self, actions: list[B2buaAction]) -> list[B2buaAction]:
        for a in actions:
            if isinstance(a, SendRequest):
                self.requests.append(a)
            elif isinstance(a, SendResponse):
                self.responses.append(a)
            elif isinstance(a, SetTimer):
                self.timers[(a.key, a.name)] = a.at
            elif isinstance(a, CancelTimer):
                self.timers.pop((a.key, a.name), None)
            elif isinstance(a, Log):
                self.logs.append(a)
            elif isinstance(a, WriteCdr):
                self.cdrs.append(a)
        return actions

    def advance(self, seconds: float) -> None:
        end = self.now + seconds
        while True:
            due = sorted((at_, k) for k, at_ in self.timers.items() if at_ <= end)
            if not due:
                break
            at_, key = due[0]
            del self.timers[key]
            self.now = at_
            self.run(self.mgr.on_timer(key[0], key[1], self.now))
        self.now = end

    # -- peers ----------------------------------------------------------------------------------

    def register(self, username: str = "bob", contact: Destination = SOFTPHONE) -> None:
        uri = Uri(user=username, host=contact.host, port=contact.port)
        b = Binding(
            aor=f"sip:{username}@demo.test",
            contact=NameAddr(uri),
            expires_at=self.wall0.timestamp() + 3600,
            call_id=f"reg-{username}",
            cseq=1,
            source=Source(contact.host, contact.port, contact.transport),
        )
        self.location.apply([Added(b)])

    def invite(
        self,
        to: str = "+4681001002",
        caller: str = "+46812345678",
        source: Destination = PSTN,
        headers: list[tuple[str, str]] | None = None,
    ) -> Request:
        req = Request(
            method="INVITE",
            uri=Uri(user=to, host="127.0.0.1", port=5060),
            via=[Via("UDP", source.host, source.port, {"branch": "z9hG4bK" + new_tag()})],
            from_=NameAddr(Uri(user=caller, host=source.host), params={"tag": new_tag()}),
            to=NameAddr(Uri(user=to, host="127.0.0.1")),
            call_id=new_tag() + "@caller",
            cseq=CSeq(1, "INVITE"),
            max_forwards=70,
            contact=[NameAddr(Uri(user="caller", host=source.host, port=source.port))],
            headers=[("Content-Type", "application/sdp"), *(headers or [])],
            body=SDP,
        )
        self.run(self.mgr.on_request(req, source, self.now))
        return req

    def in_dialog(self, invite: Request, method: str, source: Destination = PSTN, cseq: int = 2) -> Request:
        """A request from the caller within the A dialog (our To tag from the last response)."""
        tags = (
            r.response.to.tag for r in reversed(self.responses) if r.request is invite and r.response.to.tag
        )
        tag = next(tags, "none-yet")  # a CANCEL may come before any response
        to = invite.to.copy()
        to.params["tag"] = tag
        req = Request(
            method=method,
            uri=Uri(user="vidare", host="127.0.0.1", port=5060),
            via=[Via("UDP", source.host, source.port, {"branch": "z9hG4bK" + new_tag()})],
            from_=invite.from_.copy(),
            to=to,
            call_id=invite.call_id,
            cseq=CSeq(invite.cseq.number if method in ("ACK", "CANCEL") else cseq, method),
            max_forwards=70,
        )
        if method == "CANCEL":
            req.to = invite.to.copy()
        self.run(self.mgr.on_request(req, source, self.now))
        return req

    def invites_to(self, host_port: tuple[str, int] | None = None) -> list[SendRequest]:
        return [
            r
            for r in self.requests
            if r.request.method == "INVITE" and (host_port is None or (r.dest.host, r.dest.port) == host_port)
        ]

    def sent(self, method: str) -> list[SendRequest]:
        return [r for r in self.requests if r.request.method == method]

    def answer(self, sent: SendRequest, status: int, body: bytes = b"", tag: str | None = None) -> Response:
        """The peer's response to one of our requests, fed back to the core."""
        resp = make_response(sent.request, status, to_tag=tag or ("t-" + sent.request.call_id[:6]))
        resp.body = body
        if body:
            resp.headers.append(("Content-Type", "application/sdp"))
        if 100 < status < 300:
            resp.contact = [NameAddr(sent.request.uri.copy())]
        assert sent.owner is not None
        self.run(self.mgr.on_response(resp, sent.owner, self.now))
        return resp

    def statuses_to(self, invite: Request) -> list[int]:
        return [r.response.status for r in self.responses if r.request is invite]

    def events(self, name: str) -> list[dict[str, Any]]:
        return [log.fields for log in self.logs if log.event == name]


def with_credentials(snap: DirectorySnapshot, passwords: dict[str, str]) -> DirectorySnapshot:
    """The snapshot with SIP credentials (HA1 as the store keeps them) for the given users."""
    import hashlib

    from policy.model import SipCredentials

    creds = []
    for user, pw in passwords.items():
        a1 = f"{user}:{snap.company.domain}:{pw}".encode()
        creds.append(
            SipCredentials(
                user, snap.company.domain, hashlib.md5(a1).hexdigest(), hashlib.sha256(a1).hexdigest()
            )
        )
    return DirectorySnapshot.build(
        version=snap.version + 1,
        company=snap.company,
        catalogue=snap.catalogue,
        users=list(snap.users.values()),
        departments=list(snap.departments.values()),
        public_holidays=snap.public_holidays,
        credentials=creds,
    )


def authorize(
    challenge_407: Response, invite: Request, user: str, password: str, realm: str = "demo.test"
) -> None:
    """Add a Proxy-Authorization (MD5, qop=auth) answering the 407's challenge to ``invite``."""
    import hashlib
    import re

    from sipcore.digest import digest_response

    value = next(v for n, v in challenge_407.headers if n == "Proxy-Authenticate" and "MD5" in v)
    nonce = re.search(r'nonce="([^"]+)"', value)
    opaque = re.search(r'opaque="([^"]+)"', value)
    assert nonce is not None and opaque is not None
    ha1 = hashlib.md5(f"{user}:{realm}:{password}".encode()).hexdigest()
    uri = str(invite.uri)
    resp = digest_response(
        "MD5", ha1, nonce.group(1), "INVITE", uri, qop="auth", nc="00000001", cnonce="c0ffee"
    )
    invite.headers.append(
        (
            "Proxy-Authorization",
            f'Digest username="{user}", realm="{realm}", nonce="{nonce.group(1)}", uri="{uri}", '
            f'response="{resp}", algorithm=MD5, qop=auth, nc=00000001, cnonce="c0ffee", '
            f'opaque="{opaque.group(1)}"',
        )
    )
