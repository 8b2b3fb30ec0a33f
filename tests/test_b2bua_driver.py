"""The driver joins the call manager to the real TransactionLayer: what reaches the wire."""

from __future__ import annotations

from b2bua_harness import MOBILE, PSTN, SDP, SOFTPHONE, B2bua

from sipcore.b2bua.driver import TIMER_OWNER, B2buaDriver, DriverOutput
from sipcore.builders import make_response
from sipcore.message import NameAddr, Request, Response
from sipcore.transaction import Deliver, Send, SetTimer, Terminated, TransactionLayer


class Wire:
    """Runs the layer's and the driver's actions the way the glue does, on a fake clock."""

    def __init__(self) -> None:
        self.h = B2bua()
        self.layer = TransactionLayer()
        self.driver = B2buaDriver(self.h.mgr, self.layer)
        self.sent: list[Send] = []
        self.timers: dict[tuple[object, str], float] = {}

    def run(self, actions: list[DriverOutput]) -> None:
        for a in actions:
            if isinstance(a, Send):
                self.sent.append(a)
            elif isinstance(a, SetTimer):
                self.timers[(a.owner, a.name)] = a.at
            elif isinstance(a, Deliver):
                if isinstance(a.event, Request):
                    self.run(self.driver.on_request(a.event, PSTN, self.h.now))
                elif isinstance(a.event, Response):
                    self.run(self.driver.on_response(a.event, a.owner, self.h.now))
            elif isinstance(a, Terminated):
                self.driver.forget(a.owner)

    def request_in(self, req: Request) -> None:
        _, actions = self.layer.on_request(req, PSTN, self.h.now)
        self.run(list(actions))

    def response_in(self, resp: Response) -> None:
        _, actions = self.layer.on_response(resp, self.h.now)
        self.run(list(actions))

    def to(self, port: int, method: str | None = None) -> list[Send]:
        return [
            s
            for s in self.sent
            if s.dest.port == port
            and (method is None or (isinstance(s.message, Request) and s.message.method == method))
        ]


def _reply(send: Send, status: int, body: bytes = b"") -> Response:
    assert isinstance(send.message, Request)
    r = make_response(send.message, status, to_tag="peer" + str(send.dest.port))
    r.body = body
    if status < 300:
        r.contact = [NameAddr(send.message.uri.copy())]
    return r


def test_fork_answer_cancel_through_the_transaction_layer() -> None:
    w = Wire()
    w.h.register("bob")
    req = _build_invite()
    w.request_in(req)
    (soft,) = w.to(SOFTPHONE.port, "INVITE")
    (mobile,) = w.to(MOBILE.port, "INVITE")
    assert ((TIMER_OWNER, "c1"), "ring") in w.timers
    w.response_in(_reply(mobile, 180))
    assert [s.message.status for s in w.to(PSTN.port) if isinstance(s.message, Response)] == [180]
    w.response_in(_reply(soft, 200, SDP))
    statuses = [s.message.status for s in w.to(PSTN.port) if isinstance(s.message, Response)]
    assert statuses == [180, 200]
    (cancel,) = w.to(MOBILE.port, "CANCEL")
    assert isinstance(cancel.message, Request) and cancel.message.header("Reason")
    assert len(w.driver) >= 2  # the client transactions still running are mapped to their legs


def _build_invite() -> Request:
    from sipcore.builders import new_tag
    from sipcore.message import CSeq, Uri, Via

    return Request(
        method="INVITE",
        uri=Uri(user="+4681001002", host="127.0.0.1", port=5060),
        via=[Via("UDP", PSTN.host, PSTN.port, {"branch": "z9hG4bK" + new_tag()})],
        from_=NameAddr(Uri(user="+46812345678", host=PSTN.host), params={"tag": new_tag()}),
        to=NameAddr(Uri(user="+4681001002", host="127.0.0.1")),
        call_id=new_tag() + "@pstn",
        cseq=CSeq(1, "INVITE"),
        max_forwards=70,
        contact=[NameAddr(Uri(user="caller", host=PSTN.host, port=PSTN.port))],
        headers=[("Content-Type", "application/sdp")],
        body=SDP,
    )
