"""Digest authentication (RFC 3261 22, RFC 7616, RFC 8760): table-driven, fake wall clock."""

from __future__ import annotations

import hashlib
import re

import pytest

from policy.model import SipCredentials
from sipcore.digest import (
    AuthResult,
    DigestAuthenticator,
    digest_response,
    parse_credentials,
)
from sipcore.message import CSeq, NameAddr, Request, Uri, Via

REALM = "demo.test"
NOW = 1_800_000_000.0


def md5(s: str) -> str:
    return hashlib.md5(s.encode()).hexdigest()


def sha256(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


def creds_for(username: str, password: str, realm: str = REALM) -> SipCredentials:
    a1 = f"{username}:{realm}:{password}"
    return SipCredentials(username, realm, md5(a1), sha256(a1))


USERS = {"alice": creds_for("alice", "alice-demo"), "bob": creds_for("bob", "bob-demo")}


def lookup(name: str) -> SipCredentials | None:
    return USERS.get(name)


def register(*auth: str, uri: str = "sip:demo.test", header: str = "Authorization") -> Request:
    host = uri.split(":", 1)[1]
    return Request(
        method="REGISTER",
        uri=Uri("sip", None, None, host),
        via=[Via("UDP", "192.0.2.1", 5060, {"branch": "z9hG4bKabc"})],
        from_=NameAddr(Uri("sip", "alice", None, REALM), params={"tag": "f1"}),
        to=NameAddr(Uri("sip", "alice", None, REALM)),
        call_id="c1@192.0.2.1",
        cseq=CSeq(1, "REGISTER"),
        headers=[(header, a) for a in auth],
    )


def challenge_params(value: str) -> dict[str, str]:
    assert value.startswith("Digest ")
    return {m[0].lower(): m[1] or m[2] for m in re.findall(r'(\w+)=(?:"([^"]*)"|([^,\s]+))', value[7:])}


def answer(
    auth: DigestAuthenticator,
    *,
    user: str = "alice",
    password: str = "alice-demo",
    algorithm: str = "SHA-256",
    nc: int = 1,
    qop: str | None = "auth",
    uri: str = "sip:demo.test",
    method: str = "REGISTER",
    nonce: str | None = None,
    realm: str = REALM,
    now: float = NOW,
) -> tuple[str, str]:
    """An Authorization value computed from the RFC formula with hashlib, not with our code."""
    if nonce is None:
        nonce = challenge_params(auth.challenge(now)[0][1])["nonce"]
    h = sha256 if algorithm == "SHA-256" else md5
    ha1 = h(f"{user}:{realm}:{password}")
    ha2 = h(f"{method}:{uri}")
    cnonce = "0a4f113b"
    nc_text = f"{nc:08x}"
    if qop:
        response = h(f"{ha1}:{nonce}:{nc_text}:{cnonce}:{qop}:{ha2}")
        extra = f', qop={qop}, nc={nc_text}, cnonce="{cnonce}"'
    else:
        response = h(f"{ha1}:{nonce}:{ha2}")
        extra = ""
    value = (
        f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
        f'response="{response}", algorithm={algorithm}, opaque="{auth.opaque}"{extra}'
    )
    return value, nonce


# -- parsing ---------------------------------------------------------------------------------

PARSE_CASES = [
    (
        'Digest username="bob", realm="biloxi.com", nonce="dcd98b", uri="sip:bob@biloxi.com", '
        'response="245f23415f11432b3434341c022", qop=auth, nc=00000001, cnonce="0a4f113b"',
        {"username": "bob", "realm": "biloxi.com", "qop": "auth", "nc": "00000001", "cnonce": "0a4f113b"},
    ),
    ('DIGEST USERNAME="a\\"b\\\\c", Realm=x', {"username": 'a"b\\c', "realm": "x"}),
    ('digest  username = "x" ,realm="a,b"  ,  nonce=abc', {"username": "x", "realm": "a,b", "nonce": "abc"}),
    ('Digest username="first", username="second"', {"username": "first"}),
]


@pytest.mark.parametrize(("value", "expected"), PARSE_CASES, ids=["rfc3261", "escapes", "lws", "dup"])
def test_parse_credentials(value: str, expected: dict[str, str]) -> None:
    creds = parse_credentials(value)
    assert creds is not None
    for k, v in expected.items():
        assert creds.get(k) == v


@pytest.mark.parametrize(
    "value",
    [
        "NoOneKnowsThisScheme opaque-data=here",  # RFC 4475 regaut01
        "Basic YWxpY2U6cGFzcw==",
        "Digest",
        'Digest username="unterminated',
        "Digest username=a realm=b",
    ],
    ids=["regaut01", "basic", "empty", "unterminated", "no-comma"],
)
def test_parse_credentials_rejects(value: str) -> None:
    assert parse_credentials(value) is None


# -- response formula ---------------------------------------------------------------------------

# RFC 7616 3.9.1: Mufasa / "Circle of Life", GET /dir/index.html.
RFC7616 = {
    "nonce": "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
    "cnonce": "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
    "a1": "Mufasa:http-auth@example.org:Circle of Life",
}


@pytest.mark.parametrize(
    ("algorithm", "h", "expected"),
    [
        ("MD5", md5, "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", sha256, "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
    ids=["md5", "sha256"],
)
def test_rfc7616_example(algorithm: str, h: object, expected: str) -> None:
    assert callable(h)
    ha1 = h(RFC7616["a1"])
    got = digest_response(
        algorithm,
        ha1,
        RFC7616["nonce"],
        "GET",
        "/dir/index.html",
        qop="auth",
        nc="00000001",
        cnonce=RFC7616["cnonce"],
    )
    assert got == expected


def test_rfc2069_and_sess_formulas() -> None:
    ha1 = md5("u:r:p")
    assert digest_response("MD5", ha1, "n", "REGISTER", "sip:r") == md5(f"{ha1}:n:{md5('REGISTER:sip:r')}")
    sess_ha1 = sha256(f"{sha256('u:r:p')}:n:c")
    expected = sha256(f"{sess_ha1}:n:00000001:c:auth:{sha256('REGISTER:sip:r')}")
    got = digest_response(
        "SHA-256-sess", sha256("u:r:p"), "n", "REGISTER", "sip:r", qop="auth", nc="00000001", cnonce="c"
    )
    assert got == expected


# -- challenges ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("proxy", "stale", "name"),
    [
        (False, False, "WWW-Authenticate"),
        (True, False, "Proxy-Authenticate"),
        (False, True, "WWW-Authenticate"),
    ],
    ids=["www", "proxy", "stale"],
)
def test_challenge_shape(proxy: bool, stale: bool, name: str) -> None:
    auth = DigestAuthenticator(REALM)
    headers = auth.challenge(NOW, stale=stale, proxy=proxy)
    assert [h[0] for h in headers] == [name, name]
    params = [challenge_params(v) for _, v in headers]
    assert [p["algorithm"] for p in params] == ["SHA-256", "MD5"]  # RFC 8760 3: preferred first
    for p in params:
        assert p["realm"] == REALM
        assert p["qop"] == "auth"
        assert p["opaque"] == auth.opaque
        assert re.fullmatch(r"[A-Za-z0-9_-]+", p["nonce"])
        assert ("stale" in p) is stale
        if stale:
            assert p["stale"] == "true"


def test_nonces_unique_and_unforgeable() -> None:
    auth = DigestAuthenticator(REALM, secret=b"k" * 32)
    n1 = challenge_params(auth.challenge(NOW)[0][1])["nonce"]
    n2 = challenge_params(auth.challenge(NOW)[0][1])["nonce"]
    assert n1 != n2  # same second, still distinct (a random salt)
    other = DigestAuthenticator(REALM, secret=b"x" * 32)
    # A nonce minted under another secret is not ours.
    forged, _ = answer(auth, nonce=challenge_params(other.challenge(NOW)[0][1])["nonce"])
    assert auth.verify(register(forged), lookup, NOW).reason == "nonce not issued by us"
    # Tampering with one character of a good nonce breaks the MAC.
    bad = n1[:-2] + ("A" if n1[-2] != "A" else "B") + n1[-1]
    tampered, _ = answer(auth, nonce=bad)
    assert not auth.verify(register(tampered), lookup, NOW).ok


def test_shared_secret_across_instances() -> None:
    a = DigestAuthenticator(REALM, secret=b"s" * 32)
    b = DigestAuthenticator(REALM, secret=b"s" * 32)
    value, _ = answer(a)
    assert b.verify(register(value), lookup, NOW + 1).ok


# -- verification ----------------------------------------------------------------------------

VERIFY_CASES: list[tuple[str, dict[str, object], bool, str]] = [
    ("sha256", {}, True, "ok"),
    ("md5", {"algorithm": "MD5"}, True, "ok"),
    ("rfc2069-md5", {"algorithm": "MD5", "qop": None}, True, "ok"),
    ("rfc2069-sha256-refused", {"qop": None}, False, "qop required for this algorithm"),
    ("wrong-password", {"password": "nope"}, False, "wrong password"),
    ("unknown-user", {"user": "mallory"}, False, "unknown user"),
    ("uri-mismatch", {"uri": "sip:other.test"}, False, "digest uri differs from Request-URI"),
    ("uri-case-insensitive-host", {"uri": "SIP:Demo.Test"}, True, "ok"),
    ("nc-zero", {"nc": 0}, False, "nc is zero"),
]


@pytest.mark.parametrize(
    ("kwargs", "ok", "reason"), [c[1:] for c in VERIFY_CASES], ids=[c[0] for c in VERIFY_CASES]
)
def test_verify(kwargs: dict[str, object], ok: bool, reason: str) -> None:
    auth = DigestAuthenticator(REALM)
    value, _ = answer(auth, **kwargs)  # type: ignore[arg-type]
    result = auth.verify(register(value), lookup, NOW + 5)
    assert (result.ok, result.reason, result.stale) == (ok, reason, False)
    assert result.username == ("alice" if ok else None)


def test_proxy_authorization_header() -> None:
    auth = DigestAuthenticator(REALM)
    value, _ = answer(auth)
    assert auth.verify(register(value, header="Proxy-Authorization"), lookup, NOW, proxy=True).ok
    # Credentials in the other header do not count.
    assert not auth.verify(register(value), lookup, NOW, proxy=True).ok


def test_other_realm_and_scheme_are_no_credentials() -> None:
    auth = DigestAuthenticator(REALM)
    other = DigestAuthenticator("elsewhere.test")
    foreign, _ = answer(other, realm="elsewhere.test")
    for req in (
        register(),
        register("NoOneKnowsThisScheme opaque-data=here"),  # RFC 4475 regaut01
        register(foreign),
    ):
        assert auth.verify(req, lookup, NOW) == AuthResult(False, None, False, "no credentials")
    # Our realm's credentials are found even after another realm's.
    ours, _ = answer(auth)
    assert auth.verify(register(foreign, ours), lookup, NOW).ok


def test_credentials_with_another_realm_in_store_count_as_unknown() -> None:
    auth = DigestAuthenticator(REALM)
    value, _ = answer(auth)
    result = auth.verify(register(value), lambda u: creds_for(u, "alice-demo", "x.test"), NOW)
    assert (result.ok, result.reason) == (False, "unknown user")


@pytest.mark.parametrize(
    ("age", "ok", "stale", "password"),
    [
        (299.0, True, False, "alice-demo"),
        (300.0, True, False, "alice-demo"),
        (301.0, False, True, "alice-demo"),
        (301.0, False, False, "wrong"),  # stale only when the response was right
        (-30.0, True, False, "alice-demo"),  # small clock skew between instances
        (-120.0, False, True, "alice-demo"),
    ],
    ids=["fresh", "edge", "expired", "expired-wrong", "skew", "future"],
)
def test_nonce_expiry(age: float, ok: bool, stale: bool, password: str) -> None:
    auth = DigestAuthenticator(REALM, nonce_lifetime=300.0)
    value, _ = answer(auth, password=password)
    result = auth.verify(register(value), lookup, NOW + age)
    assert (result.ok, result.stale) == (ok, stale)


def test_nc_must_increase() -> None:
    auth = DigestAuthenticator(REALM)
    _, nonce = answer(auth)
    steps = [(1, True), (1, False), (2, True), (5, True), (3, False), (5, False), (6, True)]
    for nc, ok in steps:
        value, _ = answer(auth, nonce=nonce, nc=nc)
        result = auth.verify(register(value), lookup, NOW + nc)
        assert result.ok is ok, nc
        if not ok:
            assert (result.reason, result.stale) == ("replayed nc", False)


def test_rfc2069_nonce_is_single_use() -> None:
    auth = DigestAuthenticator(REALM)
    value, _ = answer(auth, algorithm="MD5", qop=None)
    assert auth.verify(register(value), lookup, NOW).ok
    again = auth.verify(register(value), lookup, NOW + 1)
    assert (again.ok, again.stale) == (False, True)


def test_nc_table_is_bounded_and_eviction_never_reopens_replay() -> None:
    auth = DigestAuthenticator(REALM, max_tracked_nonces=2)
    answers = [answer(auth, now=NOW + i) for i in range(3)]
    for i, (value, _) in enumerate(answers):
        assert auth.verify(register(value), lookup, NOW + 10 + i).ok
    assert len(auth._nc) == 2
    # The first nonce was evicted while valid: a replay of it gets a fresh challenge, not access.
    replay = auth.verify(register(answers[0][0]), lookup, NOW + 20)
    assert (replay.ok, replay.stale) == (False, True)


def test_nc_table_pruned_by_age() -> None:
    auth = DigestAuthenticator(REALM, nonce_lifetime=60.0)
    value, _ = answer(auth)
    assert auth.verify(register(value), lookup, NOW).ok
    later, _ = answer(auth, now=NOW + 100)
    assert auth.verify(register(later), lookup, NOW + 100).ok
    assert len(auth._nc) == 1


def test_unknown_user_and_wrong_password_look_the_same() -> None:
    auth = DigestAuthenticator(REALM)
    calls: list[str] = []

    def counting_lookup(name: str) -> SipCredentials | None:
        calls.append(name)
        return USERS.get(name)

    wrong, _ = answer(auth, password="bad")
    unknown, _ = answer(auth, user="mallory", password="bad")
    r1 = auth.verify(register(wrong), counting_lookup, NOW)
    r2 = auth.verify(register(unknown), counting_lookup, NOW)
    assert calls == ["alice", "mallory"]  # the same path: lookup then one full digest each
    assert (r1.ok, r1.stale, r1.username) == (r2.ok, r2.stale, r2.username) == (False, False, None)
    # The dummy HA1 has the real length, so the hash input is the same size either way.
    assert len(auth._dummy_ha1["md5"]) == 32 and len(auth._dummy_ha1["sha256"]) == 64


def test_constructor_validates() -> None:
    with pytest.raises(ValueError):
        DigestAuthenticator(REALM, nonce_lifetime=0)
