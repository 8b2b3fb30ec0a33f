"""Registrar and location service (RFC 3261 section 10): table-driven, fake wall clock."""

from __future__ import annotations

import hashlib
import re
from email.utils import parsedate_to_datetime
from itertools import count
from pathlib import Path

import pytest

from policy.model import SipCredentials
from sipcore.digest import DigestAuthenticator
from sipcore.message import CSeq, NameAddr, Request, Response, Uri, Via
from sipcore.parser import parse_datagram
from sipcore.registrar import (
    Added,
    Binding,
    LocationService,
    Refreshed,
    RegisterResult,
    Registrar,
    Removed,
    RemovedAll,
    Source,
    contact_key,
)
from sipcore.serializer import serialize

REALM = "demo.test"
NOW = 1_800_000_000.0
SRC = ("192.0.2.10", 5062, "UDP")
TORTURE = Path(__file__).parent / "data" / "sip-torture" / "rfc4475"


def _h(name: str, s: str) -> str:
    return hashlib.new(name, s.encode()).hexdigest()


def creds_for(username: str, password: str, realm: str = REALM) -> SipCredentials:
    a1 = f"{username}:{realm}:{password}"
    return SipCredentials(username, realm, _h("md5", a1), _h("sha256", a1))


USERS = {u: creds_for(u, f"{u}-demo") for u in ("alice", "bob")}


def make_registrar(**kwargs: object) -> Registrar:
    return Registrar(
        frozenset({"demo.test", "127.0.0.1"}),
        DigestAuthenticator(REALM),
        USERS.get,
        LocationService(),
        aor_domain="demo.test",
        **kwargs,  # type: ignore[arg-type]
    )


def contact(text: str, **params: str | None) -> NameAddr:
    """``alice@192.0.2.10:5062`` -> <sip:alice@192.0.2.10:5062> with header params."""
    user, _, hostport = text.rpartition("@")
    host, _, port = hostport.partition(":")
    return NameAddr(Uri("sip", user or None, None, host, int(port) if port else None), params=dict(params))


_cseq = count(1)


def make_register(
    *contacts: NameAddr,
    user: str = "alice",
    to_user: str | None = None,
    to_scheme: str = "sip",
    ruri_host: str = "demo.test",
    to_host: str | None = None,
    expires: str | None = None,
    call_id: str = "reg-1@192.0.2.10",
    cseq: int | None = None,
    headers: tuple[tuple[str, str], ...] = (),
) -> Request:
    to_user = to_user or user
    to_uri = Uri(to_scheme, to_user, None, to_host or ruri_host)
    if to_scheme == "tel":
        to_uri = Uri("tel", opaque="+4681001001")
    hdrs = list(headers)
    if expires is not None:
        hdrs.append(("Expires", expires))
    return Request(
        method="REGISTER",
        uri=Uri("sip", None, None, ruri_host),
        via=[Via("UDP", "192.0.2.10", 5062, {"branch": "z9hG4bK" + str(next(_cseq))})],
        from_=NameAddr(Uri("sip", user, None, ruri_host), params={"tag": "ft"}),
        to=NameAddr(to_uri),
        call_id=call_id,
        cseq=CSeq(cseq if cseq is not None else next(_cseq), "REGISTER"),
        contact=list(contacts),
        headers=hdrs,
    )


def sign(
    req: Request, reg: Registrar, now: float, *, user: str | None = None, password: str | None = None
) -> Request:
    """Add an Authorization answering a fresh SHA-256 challenge (RFC formula, hashlib only)."""
    user = user or req.from_.uri.user or ""
    password = password or f"{user}-demo"
    nonce = re.search(r'nonce="([^"]+)"', reg.authenticator.challenge(now)[0][1])
    assert nonce
    uri = str(req.uri)
    ha1 = _h("sha256", f"{user}:{REALM}:{password}")
    ha2 = _h("sha256", f"REGISTER:{uri}")
    resp = _h("sha256", f"{ha1}:{nonce[1]}:00000001:c0ffee:auth:{ha2}")
    req.headers.append(
        (
            "Authorization",
            f'Digest username="{user}", realm="{REALM}", nonce="{nonce[1]}", uri="{uri}", '
            f'response="{resp}", algorithm=SHA-256, qop=auth, nc=00000001, cnonce="c0ffee"',
        )
    )
    return req


def do(reg: Registrar, req: Request, now: float = NOW, **sign_kw: str) -> RegisterResult:
    return reg.handle_register(sign(req, reg, now, **sign_kw), SRC, now)


def contacts_of(resp: Response) -> list[str]:
    """The Contact header lines of the serialized response."""
    return [
        line[len("Contact: ") :]
        for line in serialize(resp).decode().split("\r\n")
        if line.lower().startswith("contact:")
    ]


def expires_of(resp: Response) -> dict[str, str | None]:
    return {str(c.uri): c.params.get("expires") for c in resp.contact}


# -- authentication --------------------------------------------------------------------------


def test_first_register_is_challenged_twice() -> None:
    reg = make_registrar()
    res = reg.handle_register(make_register(contact("alice@192.0.2.10:5062")), SRC, NOW)
    r = res.response
    assert (r.status, r.reason) == (401, "Unauthorized")
    challenges = r.header_values("WWW-Authenticate")
    assert [re.search(r"algorithm=([\w-]+)", c)[1] for c in challenges] == ["SHA-256", "MD5"]  # type: ignore[index]
    assert r.to.tag
    assert res.changes == [] and reg.location.lookup("sip:alice@demo.test", NOW) == []
    assert res.auth is not None and res.auth.reason == "no credentials"


def test_unknown_scheme_is_challenged() -> None:  # RFC 4475 regaut01
    reg = make_registrar()
    req = make_register(headers=(("Authorization", "NoOneKnowsThisScheme opaque-data=here"),))
    assert reg.handle_register(req, SRC, NOW).response.status == 401


def _shape(res: RegisterResult) -> tuple[object, ...]:
    r = res.response
    names = [n for n, _ in r.headers]
    params = [sorted(re.findall(r"(\w+)=", v)) for n, v in r.headers if n == "WWW-Authenticate"]
    return (r.status, r.reason, names, params, [len(v) for n, v in r.headers])


def test_unknown_user_and_wrong_password_answer_alike() -> None:
    reg = make_registrar()
    wrong = do(reg, make_register(contact("alice@h")), password="guess")
    unknown = do(reg, make_register(contact("mallory@h"), user="mallory"), password="guess")
    assert _shape(wrong) == _shape(unknown)
    assert wrong.response.status == 401
    assert wrong.changes == unknown.changes == []


def test_stale_nonce_gets_stale_challenge() -> None:
    reg = make_registrar()
    req = sign(make_register(contact("alice@h")), reg, NOW)
    res = reg.handle_register(req, SRC, NOW + 301)
    assert res.response.status == 401
    assert all("stale=true" in v for v in res.response.header_values("WWW-Authenticate"))


# -- the order of RFC 3261 10.3 --------------------------------------------------------------

REJECT_CASES = [
    # id, make_register kwargs (signed as alice), expected status
    ("foreign-request-uri", {"ruri_host": "example.com"}, 404),
    ("foreign-to-domain", {"to_host": "example.com"}, 404),
    ("other-users-aor", {"to_user": "bob"}, 403),
    ("to-not-sip", {"to_scheme": "tel"}, 400),
    ("require-unknown", {"headers": (("Require", "foo, path"),)}, 420),
    ("bad-expires-header", {"expires": "soon"}, 400),
]


@pytest.mark.parametrize(
    ("kwargs", "status"), [c[1:] for c in REJECT_CASES], ids=[c[0] for c in REJECT_CASES]
)
def test_rejections(kwargs: dict[str, object], status: int) -> None:
    reg = make_registrar()
    res = do(reg, make_register(contact("alice@192.0.2.10"), **kwargs))  # type: ignore[arg-type]
    assert res.response.status == status
    assert res.changes == []
    assert reg.location.aors() == []
    assert res.response.to.tag
    if status == 420:
        assert res.response.header("Unsupported") == "foo, path"


def test_foreign_domain_is_not_challenged() -> None:
    reg = make_registrar()
    res = reg.handle_register(make_register(ruri_host="example.com"), SRC, NOW)
    assert res.response.status == 404 and res.auth is None


def test_listen_address_is_our_domain_and_same_aor() -> None:
    reg = make_registrar()
    res = do(reg, make_register(contact("alice@192.0.2.10:5062"), ruri_host="127.0.0.1"))
    assert res.response.status == 200
    assert res.aor == "sip:alice@demo.test"
    assert len(reg.location.lookup("sip:alice@demo.test", NOW)) == 1


def test_domain_names_may_be_a_callable_read_per_request() -> None:
    domains = {"demo.test"}
    reg = Registrar(lambda: frozenset(domains), DigestAuthenticator(REALM), USERS.get, LocationService())
    assert (
        do(reg, make_register(contact("a@h"), ruri_host="new.test", to_host="new.test")).response.status
        == 404
    )
    domains.add("new.test")
    assert (
        do(reg, make_register(contact("a@h"), ruri_host="new.test", to_host="new.test")).response.status
        == 200
    )


# -- bindings --------------------------------------------------------------------------------


def test_register_lists_binding_with_expires_and_date() -> None:
    reg = make_registrar()
    res = do(reg, make_register(contact("alice@192.0.2.10:5062"), headers=(("User-Agent", "Linphone"),)))
    r = res.response
    assert (r.status, r.reason) == (200, "OK")
    assert contacts_of(r) == ["<sip:alice@192.0.2.10:5062>;expires=3600"]
    date = r.header("Date")
    assert date is not None and parsedate_to_datetime(date).timestamp() == int(NOW)
    assert date.endswith("GMT")
    [change] = res.changes
    assert isinstance(change, Added)
    b = change.binding
    assert (b.aor, b.expires_at, b.cseq, b.q, b.source, b.user_agent) == (
        "sip:alice@demo.test",
        NOW + 3600,
        b.cseq,
        1.0,
        Source(*SRC),
        "Linphone",
    )
    assert reg.location.lookup("sip:alice@demo.test", NOW) == [b]


def test_refresh_and_query() -> None:
    reg = make_registrar()
    first = do(reg, make_register(contact("alice@h"), cseq=1))
    again = do(reg, make_register(contact("alice@h"), cseq=2, expires="600"), NOW + 100)
    [change] = again.changes
    assert isinstance(change, Refreshed) and change.binding.expires_at == NOW + 700
    assert first.changes[0].binding.key == change.binding.key  # type: ignore[union-attr]
    assert expires_of(again.response) == {"sip:alice@h": "600"}
    # A REGISTER without Contact is a query: lists the bindings, changes nothing.
    query = do(reg, make_register(cseq=3), NOW + 200)
    assert query.changes == [] and expires_of(query.response) == {"sip:alice@h": "500"}


def test_several_contacts_sorted_by_q() -> None:
    reg = make_registrar()
    do(reg, make_register(contact("alice@desk", q="0.5"), contact("alice@laptop", q="1.0"), call_id="a"))
    res = do(reg, make_register(contact("alice@phone", q="0.7"), call_id="b"))
    assert [str(c.uri) for c in res.response.contact] == [
        "sip:alice@laptop",
        "sip:alice@phone",
        "sip:alice@desk",
    ]
    assert [b.q for b in reg.location.lookup("sip:alice@demo.test", NOW)] == [1.0, 0.7, 0.5]
    assert contacts_of(res.response)[1] == "<sip:alice@phone>;q=0.7;expires=3600"


EXPIRES_CASES = [
    # id, Expires header, contact expires param, granted
    ("default", None, None, 3600),
    ("header", "120", None, 120),
    ("param-beats-header", "120", "300", 300),
    ("param-only", None, "900", 900),
    ("clamped-param", None, "7200", 3600),
    ("clamped-header", "100000000000", None, 3600),
    ("exactly-min", "60", None, 60),
    ("leading-zeros", "00000000000120", None, 120),
    ("huge-param", None, "9" * 5000, 3600),
]


@pytest.mark.parametrize(
    ("header", "param", "granted"), [c[1:] for c in EXPIRES_CASES], ids=[c[0] for c in EXPIRES_CASES]
)
def test_expires_choice(header: str | None, param: str | None, granted: int) -> None:
    reg = make_registrar()
    c = contact("alice@h") if param is None else contact("alice@h", expires=param)
    res = do(reg, make_register(c, expires=header))
    assert res.response.status == 200
    assert expires_of(res.response) == {"sip:alice@h": str(granted)}
    assert reg.location.lookup("sip:alice@demo.test", NOW)[0].expires_at == NOW + granted
    assert "expires" not in reg.location.lookup("sip:alice@demo.test", NOW)[0].contact.params


@pytest.mark.parametrize(
    ("header", "param"),
    [("30", None), ("3600", "59"), (None, "1")],
    ids=["header", "param", "one-second"],
)
def test_interval_too_brief(header: str | None, param: str | None) -> None:
    reg = make_registrar()
    do(reg, make_register(contact("alice@old"), call_id="x", cseq=1))
    c = contact("alice@h") if param is None else contact("alice@h", expires=param)
    res = do(reg, make_register(c, contact("alice@old", expires="0"), expires=header, call_id="x", cseq=2))
    assert (res.response.status, res.response.reason) == (423, "Interval Too Brief")
    assert res.response.header("Min-Expires") == "60"
    assert res.changes == []
    assert [str(b.contact.uri) for b in reg.location.lookup("sip:alice@demo.test", NOW)] == ["sip:alice@old"]


def test_expires_zero_removes_one_binding() -> None:
    reg = make_registrar()
    do(reg, make_register(contact("alice@a"), contact("alice@b"), call_id="x", cseq=1))
    res = do(
        reg, make_register(contact("alice@A", expires="0"), call_id="x", cseq=2)
    )  # host case-insensitive
    assert res.changes == [Removed("sip:alice@demo.test", "sip:alice@a")]
    assert expires_of(res.response) == {"sip:alice@b": "3600"}


def test_star_with_expires_zero_removes_all() -> None:
    reg = make_registrar()
    do(reg, make_register(contact("alice@a"), contact("alice@b"), call_id="x"))
    do(reg, make_register(contact("alice@c"), call_id="y"))
    res = do(reg, make_register(NameAddr(Uri(), star=True), expires="0", call_id="z"))
    assert res.response.status == 200
    assert res.changes == [RemovedAll("sip:alice@demo.test")]
    assert res.response.contact == [] and contacts_of(res.response) == []
    assert reg.location.lookup("sip:alice@demo.test", NOW) == []


STAR_BAD = [
    ("with-contact", [NameAddr(Uri(), star=True), contact("alice@h")], "0"),
    ("no-expires", [NameAddr(Uri(), star=True)], None),
    ("expires-nonzero", [NameAddr(Uri(), star=True)], "10"),
]


@pytest.mark.parametrize(("contacts", "expires"), [c[1:] for c in STAR_BAD], ids=[c[0] for c in STAR_BAD])
def test_star_misuse_is_400(contacts: list[NameAddr], expires: str | None) -> None:
    reg = make_registrar()
    do(reg, make_register(contact("alice@a")))
    res = do(reg, make_register(*contacts, expires=expires))
    assert res.response.status == 400 and res.changes == []
    assert len(reg.location.lookup("sip:alice@demo.test", NOW)) == 1


@pytest.mark.parametrize(
    ("call_id", "cseq", "status"),
    [("same", 10, 500), ("same", 9, 500), ("same", 11, 200), ("other", 1, 200)],
    ids=["equal-cseq", "lower-cseq", "higher-cseq", "other-call-id"],
)
def test_call_id_cseq_ordering(call_id: str, cseq: int, status: int) -> None:
    reg = make_registrar()
    do(reg, make_register(contact("alice@a"), call_id="same", cseq=10))
    res = do(
        reg, make_register(contact("alice@b"), contact("alice@a", expires="0"), call_id=call_id, cseq=cseq)
    )
    assert res.response.status == status
    uris = [str(b.contact.uri) for b in reg.location.lookup("sip:alice@demo.test", NOW)]
    assert uris == (["sip:alice@a"] if status == 500 else ["sip:alice@b"])
    if status == 500:
        assert res.changes == []


def test_star_respects_cseq_ordering() -> None:
    reg = make_registrar()
    do(reg, make_register(contact("alice@a"), call_id="same", cseq=10))
    res = do(reg, make_register(NameAddr(Uri(), star=True), expires="0", call_id="same", cseq=10))
    assert res.response.status == 500 and res.changes == []


def test_too_many_contacts() -> None:
    reg = make_registrar(max_contacts=2)
    assert do(reg, make_register(contact("alice@a"), contact("alice@b"))).response.status == 200
    res = do(reg, make_register(contact("alice@c"), call_id="other"))
    assert (res.response.status, res.changes) == (403, [])


def test_non_sip_contact_is_400() -> None:
    reg = make_registrar()
    res = do(reg, make_register(NameAddr(Uri("mailto", opaque="alice@example.com"))))
    assert res.response.status == 400


# -- the location service ------------------------------------------------------------------


def _binding(uri: str, expires_at: float, aor: str = "sip:alice@demo.test", q: float = 1.0) -> Binding:
    user, _, host = uri.partition("@")
    return Binding(aor, NameAddr(Uri("sip", user, None, host)), expires_at, "cid", 1, q)


def test_expiry_by_time() -> None:
    reg = make_registrar()
    do(reg, make_register(contact("alice@short", expires="60"), contact("alice@long", expires="600")))
    loc = reg.location
    assert len(loc.lookup("sip:alice@demo.test", NOW + 59)) == 2
    assert [str(b.contact.uri) for b in loc.lookup("sip:alice@demo.test", NOW + 60)] == ["sip:alice@long"]
    gone = loc.expire(NOW + 60)
    assert [str(b.contact.uri) for b in gone] == ["sip:alice@short"]
    assert loc.expire(NOW + 60) == []
    assert [str(b.contact.uri) for b in loc.expire(NOW + 1000)] == ["sip:alice@long"]
    assert loc.aors() == [] and len(loc) == 0


def test_expired_binding_is_gone_for_the_registrar_too() -> None:
    reg = make_registrar()
    do(reg, make_register(contact("alice@a", expires="60"), call_id="same", cseq=10))
    # Long after expiry the same Call-ID with a lower CSeq is a new registration, not a 500.
    res = do(reg, make_register(contact("alice@a"), call_id="same", cseq=1), NOW + 120)
    assert res.response.status == 200 and isinstance(res.changes[0], Added)


def test_load_drops_expired() -> None:
    loc = LocationService()
    kept = loc.load(
        [
            _binding("alice@a", NOW + 10, q=0.1),
            _binding("alice@b", NOW - 1),
            _binding("alice@c", NOW + 10, q=0.9),
            _binding("bob@d", NOW, aor="sip:bob@demo.test"),
        ],
        NOW,
    )
    assert kept == 2
    assert [str(b.contact.uri) for b in loc.lookup("sip:alice@demo.test", NOW)] == [
        "sip:alice@c",
        "sip:alice@a",
    ]
    assert loc.lookup("sip:bob@demo.test", NOW) == [] and loc.aors() == ["sip:alice@demo.test"]


def test_apply_changes_round_trip() -> None:
    """Replaying the registrar's changes onto an empty service rebuilds the same bindings."""
    reg = make_registrar()
    log = []
    log += do(reg, make_register(contact("alice@a"), contact("alice@b"), call_id="x", cseq=1)).changes
    log += do(
        reg, make_register(contact("alice@a", expires="0"), contact("alice@c"), call_id="x", cseq=2)
    ).changes
    log += do(reg, make_register(contact("bob@z"), user="bob", call_id="y", cseq=1)).changes
    mirror = LocationService()
    mirror.apply(log)
    for aor in ("sip:alice@demo.test", "sip:bob@demo.test"):
        assert mirror.lookup(aor, NOW) == reg.location.lookup(aor, NOW)
    mirror.apply([RemovedAll("sip:alice@demo.test")])
    assert mirror.aors() == ["sip:bob@demo.test"]


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        (Uri("sip", "Alice", None, "H.example"), Uri("SIP", "Alice", None, "h.EXAMPLE"), True),
        (Uri("sip", "alice", None, "h"), Uri("sip", "Alice", None, "h"), False),
        (Uri("sip", "a%6cice", None, "h"), Uri("sip", "alice", None, "h"), True),
        (Uri("sip", "a", None, "h", 5060), Uri("sip", "a", None, "h"), False),
        (
            Uri("sip", "a", None, "h", params={"transport": "TCP", "lr": None}),
            Uri("sip", "a", None, "h", params={"lr": None, "transport": "tcp"}),
            True,
        ),
    ],
    ids=["case-host", "case-user", "escaped-user", "explicit-port", "param-order"],
)
def test_contact_key(a: Uri, b: Uri, equal: bool) -> None:
    assert (contact_key(a) == contact_key(b)) is equal


# -- RFC 4475 registrar cases ----------------------------------------------------------------

TORTURE_CASES = [
    # file, expected Contact line in the 200 OK
    ("cparam01", "<sip:+19725552222@gw1.example.net>;unknownparam;expires=3600"),
    ("cparam02", "<sip:+19725552222@gw1.example.net;unknownparam>;expires=3600"),
    ("regescrt", "<sip:user@example.com?Route=%3Csip:sip.example.com%3E>;expires=3600"),
]


@pytest.mark.parametrize(("name", "expected"), TORTURE_CASES, ids=[c[0] for c in TORTURE_CASES])
def test_rfc4475_contact_param_placement(name: str, expected: str) -> None:
    req = parse_datagram((TORTURE / f"{name}.dat").read_bytes())
    assert isinstance(req, Request)
    users = {u: creds_for(u, "pw", "example.com") for u in ("watson", "user")}
    reg = Registrar(
        frozenset({"example.com"}), DigestAuthenticator("example.com"), users.get, LocationService()
    )
    nonce = re.search(r'nonce="([^"]+)"', reg.authenticator.challenge(NOW)[1][1])  # the MD5 one
    assert nonce
    user = req.to.uri.user or ""
    uri = str(req.uri)
    ha1 = _h("md5", f"{user}:example.com:pw")
    resp = _h("md5", f"{ha1}:{nonce[1]}:{_h('md5', f'REGISTER:{uri}')}")  # RFC 2069 form, no qop
    req.headers.append(
        (
            "Authorization",
            f'Digest username="{user}", realm="example.com", nonce="{nonce[1]}", uri="{uri}", '
            f'response="{resp}"',
        )
    )
    res = reg.handle_register(req, SRC, NOW)
    assert res.response.status == 200
    assert contacts_of(res.response) == [expected]
    # Later retrieval keeps the same placement.
    [binding] = reg.location.lookup(f"sip:{user}@example.com", NOW + 10)
    later = Response(
        status=200,
        from_=req.from_,
        to=req.to,
        call_id="x",
        cseq=CSeq(1, "REGISTER"),
        contact=[binding.contact_with_expires(NOW)],
    )
    assert contacts_of(later) == [expected]


def test_regaut01_is_challenged() -> None:
    req = parse_datagram((TORTURE / "regaut01.dat").read_bytes())
    assert isinstance(req, Request)
    reg = Registrar(
        frozenset({"example.com"}), DigestAuthenticator("example.com"), USERS.get, LocationService()
    )
    res = reg.handle_register(req, ("192.0.2.253", 5060, "TCP"), NOW)
    assert res.response.status == 401
    assert len(res.response.header_values("WWW-Authenticate")) == 2


def test_registrar_validates_limits() -> None:
    with pytest.raises(ValueError):
        make_registrar(min_expires=100, default_expires=50)
