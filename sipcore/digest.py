"""HTTP Digest authentication for SIP (RFC 3261 section 22, RFC 7616, RFC 8760), sans-IO.

The authenticator issues challenges and checks credentials; it never touches the network or a
clock (``now`` is an argument: wall-clock seconds, because nonce timestamps must survive across
processes sharing a ``secret``).

Nonces are stateless and unforgeable::

    nonce = base64url( ts(8 bytes, big-endian seconds) || salt(8 random bytes)
                       || HMAC-SHA256(secret, ts || salt || realm) )

The salt makes every challenge unique, so two phones challenged in the same second never share a
nonce (and so never share an ``nc`` counter). A nonce older than ``nonce_lifetime`` is *stale*: a
request with a correct response under a stale nonce gets ``stale=true`` so the phone retries with
the new nonce without asking its user for the password again (RFC 7616 3.3).

Replay protection: with ``qop=auth`` the nonce count ``nc`` must strictly increase per nonce; the
highest ``nc`` seen is kept in a bounded table pruned by age. When the table is full the oldest
entry is evicted and its timestamp becomes a floor: a valid nonce at or below the floor that is not
in the table is answered ``stale`` (a fresh challenge), never accepted, so eviction cannot reopen a
replay. A request without ``qop`` (RFC 2069, MD5 only) cannot carry ``nc``; such a nonce is
accepted once.

Unknown users are verified against a dummy HA1, so an unknown user and a wrong password cost the
same work and produce the same ``AuthResult`` shape (only ``reason``, meant for the operator's log,
tells them apart; it must never go on the wire).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from policy.model import SipCredentials
from sipcore.message import Request

__all__ = [
    "ALGORITHMS",
    "AuthResult",
    "DigestAuthenticator",
    "DigestCredentials",
    "digest_response",
    "format_challenge",
    "parse_credentials",
]

# algorithm name (upper case) -> (hash function name, is a -sess variant)
ALGORITHMS: Mapping[str, tuple[str, bool]] = {
    "MD5": ("md5", False),
    "MD5-SESS": ("md5", True),
    "SHA-256": ("sha256", False),
    "SHA-256-SESS": ("sha256", True),
}
# The order of the challenges we offer (RFC 8760 section 3: preferred first, one header each).
_OFFERED = ("SHA-256", "MD5")

_TS_LEN = 8
_SALT_LEN = 8
_MAC_LEN = 32
_NONCE_RAW_LEN = _TS_LEN + _SALT_LEN + _MAC_LEN
# A nonce stamped this far in the future (clock skew between instances sharing a secret) is
# still accepted; further out it is treated as stale.
_FUTURE_SKEW = 60.0

# auth-param = token "=" ( token / quoted-string )   (RFC 7235 2.1, RFC 3261 25.1)
_PARAM_RE = re.compile(
    r'[ \t]*([A-Za-z0-9\-.!%*_+`\'~]+)[ \t]*=[ \t]*("(?:[^"\\]|\\[\s\S])*"|[^\s,"]*)[ \t]*'
)
_SCHEME_RE = re.compile(r"[ \t]*([A-Za-z0-9\-.!%*_+`'~]+)(?:[ \t]+|$)")
_NC_RE = re.compile(r"[0-9A-Fa-f]{8}")


@dataclass(frozen=True, slots=True)
class DigestCredentials:
    """The parameters of one ``Digest`` credentials value; names lower-case, values unquoted."""

    params: Mapping[str, str]

    def get(self, name: str) -> str | None:
        return self.params.get(name)

    @property
    def username(self) -> str | None:
        return self.params.get("username")

    @property
    def realm(self) -> str | None:
        return self.params.get("realm")

    @property
    def algorithm(self) -> str:
        return self.params.get("algorithm", "MD5").upper()


@dataclass(frozen=True, slots=True)
class AuthResult:
    """The outcome of ``DigestAuthenticator.verify``.

    ``username`` is the authenticated user, set only when ``ok``. ``claimed_username`` is what the
    request claimed (for logs only). ``stale`` asks the caller to challenge with ``stale=true``.
    ``reason`` is for the operator's log, never for the wire.
    """

    ok: bool
    username: str | None
    stale: bool
    reason: str
    claimed_username: str | None = None


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        inner = value[1:-1]
        if "\\" not in inner:
            return inner
        out: list[str] = []
        i = 0
        while i < len(inner):
            ch = inner[i]
            if ch == "\\" and i + 1 < len(inner):
                i += 1
                ch = inner[i]
            out.append(ch)
            i += 1
        return "".join(out)
    return value


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_credentials(value: str) -> DigestCredentials | None:
    """Parse one ``Authorization``/``Proxy-Authorization`` value.

    credentials = ("Digest" LWS digest-response) / other-response   (RFC 3261 25.1)

    Returns ``None`` for another scheme (RFC 4475 regaut01: an unknown scheme is as if there were
    no credentials) or for a value that does not parse. Parameter names are case-insensitive; a
    name repeated keeps its first value.
    """
    m = _SCHEME_RE.match(value)
    if m is None or m.group(1).lower() != "digest":
        return None
    pos = m.end()
    params: dict[str, str] = {}
    n = len(value)
    while pos < n:
        pm = _PARAM_RE.match(value, pos)
        if pm is None:
            return None
        name = pm.group(1).lower()
        params.setdefault(name, _unquote(pm.group(2)))
        pos = pm.end()
        if pos < n:
            if value[pos] != ",":
                return None
            pos += 1
    if not params:
        return None
    return DigestCredentials(params)


def format_challenge(
    realm: str, nonce: str, opaque: str, algorithm: str, *, stale: bool = False, qop: str = "auth"
) -> str:
    """One ``WWW-Authenticate``/``Proxy-Authenticate`` value for one algorithm."""
    parts = [
        f"Digest realm={_quote(realm)}",
        f"nonce={_quote(nonce)}",
        f"opaque={_quote(opaque)}",
        f"algorithm={algorithm}",
        f"qop={_quote(qop)}",
    ]
    if stale:
        parts.append("stale=true")
    return ", ".join(parts)


def _h(hash_name: str, data: str) -> str:
    return hashlib.new(hash_name, data.encode("utf-8", "surrogateescape")).hexdigest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError):
        return None


def _uri_norm(uri: str) -> str:
    """Case-fold the parts of a SIP URI that compare case-insensitively (all but userinfo)."""
    scheme, sep, rest = uri.partition(":")
    if not sep:
        return uri.lower()
    # userinfo ends at the last "@" before any ";" or "?" (those start params/headers).
    cut = len(rest)
    for ch in ";?":
        i = rest.find(ch)
        if i != -1:
            cut = min(cut, i)
    at = rest.rfind("@", 0, cut)
    if at == -1:
        return f"{scheme.lower()}:{rest.lower()}"
    return f"{scheme.lower()}:{rest[: at + 1]}{rest[at + 1 :].lower()}"


def digest_response(
    algorithm: str,
    ha1: str,
    nonce: str,
    method: str,
    uri: str,
    *,
    qop: str | None = None,
    nc: str | None = None,
    cnonce: str | None = None,
) -> str:
    """The ``response`` value (RFC 7616 3.4.1, RFC 2069 when ``qop`` is None).

    response = H(HA1 ":" nonce ":" nc ":" cnonce ":" qop ":" H(method ":" uri))   with qop
    response = H(HA1 ":" nonce ":" H(method ":" uri))                             without
    For a ``-sess`` algorithm HA1 becomes H(HA1 ":" nonce ":" cnonce) first.
    """
    hash_name, sess = ALGORITHMS[algorithm.upper()]
    if sess:
        ha1 = _h(hash_name, f"{ha1}:{nonce}:{cnonce or ''}")
    ha2 = _h(hash_name, f"{method}:{uri}")
    if qop is not None:
        return _h(hash_name, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
    return _h(hash_name, f"{ha1}:{nonce}:{ha2}")


class DigestAuthenticator:
    """Issues Digest challenges and verifies credentials for one realm.

    ``secret`` keys the nonce HMAC; ``None`` draws a per-process random one (every nonce then
    dies with the process: phones simply re-authenticate). Instances that share a realm behind a
    load balancer must share the secret.
    """

    def __init__(
        self,
        realm: str,
        *,
        secret: bytes | None = None,
        nonce_lifetime: float = 300.0,
        max_tracked_nonces: int = 65536,
        algorithms: tuple[str, ...] = _OFFERED,
    ) -> None:
        if nonce_lifetime <= 0:
            raise ValueError("nonce_lifetime must be positive")
        if max_tracked_nonces < 1:
            raise ValueError("max_tracked_nonces must be at least 1")
        unknown = [a for a in algorithms if a.upper() not in ALGORITHMS]
        if not algorithms or unknown:
            raise ValueError(f"digest algorithms must be among {', '.join(ALGORITHMS)}: {unknown}")
        self.realm = realm
        self.nonce_lifetime = nonce_lifetime
        # Offered in this order, most preferred first (RFC 8760 2.4). Some UACs (SIPp 3.6)
        # take the first challenge whatever its algorithm, so the order is configurable.
        self.algorithms = tuple(a.upper() for a in algorithms)
        self._secret = secret if secret is not None else secrets.token_bytes(32)
        self._max_tracked = max_tracked_nonces
        # nonce -> (its timestamp, highest nc accepted); insertion order ~ age (first use).
        self._nc: dict[str, tuple[int, int]] = {}
        self._evicted_floor = -1  # nonces stamped at or before this, not in _nc: stale
        self.opaque = _b64(hmac.digest(self._secret, b"opaque\x00" + realm.encode(), "sha256")[:16])
        # Verified in place of a real HA1 for unknown users (same length per algorithm).
        self._dummy_ha1 = {
            "md5": secrets.token_hex(16),
            "sha256": secrets.token_hex(32),
        }

    # -- nonces -----------------------------------------------------------------------------

    def _mac(self, ts_salt: bytes) -> bytes:
        return hmac.digest(self._secret, ts_salt + self.realm.encode("utf-8"), "sha256")

    def new_nonce(self, now: float) -> str:
        ts_salt = int(now).to_bytes(_TS_LEN, "big", signed=True) + secrets.token_bytes(_SALT_LEN)
        return _b64(ts_salt + self._mac(ts_salt))

    def _nonce_time(self, nonce: str) -> int | None:
        """The timestamp of a nonce we issued, or ``None`` when it is not ours (forged/garbled)."""
        if len(nonce) > 2 * _NONCE_RAW_LEN:
            return None
        raw = _unb64(nonce)
        if raw is None or len(raw) != _NONCE_RAW_LEN:
            return None
        ts_salt, mac = raw[: _TS_LEN + _SALT_LEN], raw[_TS_LEN + _SALT_LEN :]
        if not hmac.compare_digest(mac, self._mac(ts_salt)):
            return None
        return int.from_bytes(ts_salt[:_TS_LEN], "big", signed=True)

    def _is_fresh(self, ts: int, now: float) -> bool:
        age = now - ts
        return -_FUTURE_SKEW <= age <= self.nonce_lifetime

    def _prune(self, now: float) -> None:
        """Drop expired entries from the front of the table (roughly oldest first)."""
        nc = self._nc
        while nc:
            nonce = next(iter(nc))
            if self._is_fresh(nc[nonce][0], now):
                break
            del nc[nonce]

    def _make_room(self, now: float) -> None:
        """Evict the oldest entries until one more fits; remember how far eviction reached."""
        nc = self._nc
        while len(nc) >= self._max_tracked:
            nonce = next(iter(nc))
            ts, _ = nc.pop(nonce)
            if self._is_fresh(ts, now):
                self._evicted_floor = max(self._evicted_floor, ts)

    # -- challenges -------------------------------------------------------------------------

    def challenge(self, now: float, *, stale: bool = False, proxy: bool = False) -> list[tuple[str, str]]:
        """The challenge headers for a 401 (or a 407 with ``proxy``), one per offered algorithm."""
        name = "Proxy-Authenticate" if proxy else "WWW-Authenticate"
        nonce = self.new_nonce(now)
        return [
            (name, format_challenge(self.realm, nonce, self.opaque, alg, stale=stale))
            for alg in self.algorithms
        ]

    # -- verification -----------------------------------------------------------------------

    def _select(self, request: Request, proxy: bool) -> DigestCredentials | None:
        """The first Digest credentials for our realm (other realms and schemes are skipped)."""
        name = "Proxy-Authorization" if proxy else "Authorization"
        for value in request.header_values(name):
            creds = parse_credentials(value)
            if creds is not None and creds.realm == self.realm:
                return creds
        return None

    def verify(
        self,
        request: Request,
        credentials_lookup: Callable[[str], SipCredentials | None],
        now: float,
        *,
        proxy: bool = False,
    ) -> AuthResult:
        """Check the request's credentials; see the module docstring for the rules."""
        creds = self._select(request, proxy)
        if creds is None:
            return AuthResult(False, None, False, "no credentials")
        username = creds.username
        nonce = creds.get("nonce")
        response = creds.get("response")
        digest_uri = creds.get("uri")
        if not username or not nonce or response is None or digest_uri is None:
            return AuthResult(False, None, False, "incomplete credentials", username)
        alg = ALGORITHMS.get(creds.algorithm)
        if alg is None:
            return AuthResult(False, None, False, f"unsupported algorithm {creds.algorithm}", username)
        hash_name, sess = alg
        qop = creds.get("qop")
        cnonce = creds.get("cnonce")
        nc_text = creds.get("nc")
        nc = 0
        if qop is not None:
            if qop.lower() != "auth":
                return AuthResult(False, None, False, f"unsupported qop {qop}", username)
            if not cnonce or nc_text is None or not _NC_RE.fullmatch(nc_text):
                return AuthResult(False, None, False, "qop without cnonce/nc", username)
            nc = int(nc_text, 16)
            if nc == 0:
                return AuthResult(False, None, False, "nc is zero", username)
        elif hash_name != "md5" or sess:
            # RFC 2069 compatibility (no qop) is for MD5 only (RFC 7616 3.4.1 keeps it for MD5).
            return AuthResult(False, None, False, "qop required for this algorithm", username)
        if _uri_norm(digest_uri) != _uri_norm(str(request.uri)):
            return AuthResult(False, None, False, "digest uri differs from Request-URI", username)
        opaque = creds.get("opaque")
        if opaque is not None and not hmac.compare_digest(opaque.encode(), self.opaque.encode()):
            return AuthResult(False, None, False, "opaque mismatch", username)
        ts = self._nonce_time(nonce)
        if ts is None:
            return AuthResult(False, None, False, "nonce not issued by us", username)

        # Same work whether the user exists or not: a dummy HA1 stands in for an unknown one.
        stored = credentials_lookup(username)
        known = stored is not None and stored.username == username and stored.realm == self.realm
        ha1 = self._dummy_ha1[hash_name]
        if stored is not None and known:
            ha1 = (stored.ha1_md5 if hash_name == "md5" else stored.ha1_sha256).lower()
        expected = digest_response(
            creds.algorithm, ha1, nonce, request.method, digest_uri, qop=qop, nc=nc_text, cnonce=cnonce
        )
        match = hmac.compare_digest(expected.encode(), response.lower().encode("utf-8", "replace"))
        if not (match and known):
            return AuthResult(False, None, False, "unknown user" if not known else "wrong password", username)

        # The response is right; now is the nonce still usable?
        if not self._is_fresh(ts, now):
            return AuthResult(False, None, True, "nonce expired", username)
        self._prune(now)
        seen = self._nc.get(nonce)
        if seen is None:
            if ts <= self._evicted_floor:
                return AuthResult(False, None, True, "nonce forgotten (table full)", username)
            self._make_room(now)
        elif qop is None:
            # Without qop there is no nc: a nonce is good once, then the phone gets a new one.
            return AuthResult(False, None, True, "nonce already used (no qop)", username)
        elif nc <= seen[1]:
            return AuthResult(False, None, False, "replayed nc", username)
        self._nc[nonce] = (ts, max(nc, 1))
        return AuthResult(True, username, False, "ok", username)
