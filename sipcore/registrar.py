"""The registrar and the location service (RFC 3261 section 10), sans-IO.

``Registrar.handle_register(request, source, now)`` runs RFC 3261 10.3 on one REGISTER and returns
the response plus the binding changes; the caller sends the response and persists the changes
(asynchronously, in order). ``LocationService`` is the in-memory view the call path reads; the
registrar applies each accepted change to it before returning, so a call routed right after a
REGISTER sees the new binding even before the store has it.

``now`` is wall-clock seconds (bindings are stored and must survive a restart). Nothing here does
I/O, logs or reads a clock.

Decisions where RFC 3261 leaves a choice:

- A Request-URI or To domain that is not ours gets 404 (we are a registrar for our own domain
  only, never a proxy for others). The domains are the SIP domain plus our listen addresses.
- A REGISTER whose Call-ID equals a stored binding's and whose CSeq is not higher fails as a whole
  with 500 and changes nothing (10.3 step 7 "the update MUST be aborted and the request fails";
  10.3 step 8 makes the updates atomic and names 500 for a failed request). Retransmissions never
  get here: the server transaction absorbs them.
- Contacts must be SIP or SIPS URIs (400 otherwise): a B2BUA cannot reach a ``mailto:`` binding.
- Bindings are keyed by their contact URI compared as RFC 3261 19.1.4 says (userinfo
  case-sensitive, the rest case-insensitive, parameter order irrelevant); ``+sip.instance`` and
  ``reg-id`` are stored but not used as the key (RFC 5626 outbound is not implemented).
- More than ``max_contacts`` live bindings per AOR: 403 "Too Many Contacts", nothing changed.
- Everything in a 401 is the same for an unknown user and a wrong password (the authenticator's
  ``reason`` is for logs only).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import NamedTuple
from urllib.parse import unquote

from policy.model import SipCredentials
from sipcore.builders import make_response, new_tag
from sipcore.digest import AuthResult, DigestAuthenticator
from sipcore.errors import LocalProtocolError
from sipcore.message import NameAddr, Request, Response, Uri

__all__ = [
    "Added",
    "Binding",
    "BindingChange",
    "LocationService",
    "Refreshed",
    "RegisterResult",
    "Registrar",
    "Removed",
    "RemovedAll",
    "Source",
    "contact_key",
]

# Extensions a REGISTER may require of us (RFC 3261 10.3 step 2 / 8.2.2.3). None yet.
SUPPORTED_EXTENSIONS: frozenset[str] = frozenset()

# URI parameters that RFC 3261 19.1.4 makes significant even when present in only one URI.
_ALWAYS_COMPARED = ("user", "ttl", "method", "maddr", "transport")


class Source(NamedTuple):
    """Where a REGISTER came from (the flow a call to this binding should use)."""

    host: str
    port: int
    transport: str


def contact_key(uri: Uri) -> str:
    """A canonical text for a contact URI, equal for URIs that RFC 3261 19.1.4 calls equal.

    Userinfo is compared case-sensitively after unescaping; scheme, host, parameter names and
    values and headers case-insensitively; parameter order does not matter. (19.1.4 ignores a
    parameter present in only one URI unless it is one of user/ttl/method/maddr/transport; a key
    cannot express that non-transitive rule, so every parameter counts here.)
    """
    if uri.opaque is not None:
        return f"{uri.scheme.lower()}:{unquote(uri.opaque)}"
    user = unquote(uri.user) if uri.user is not None else ""
    if uri.password is not None:
        user += ":" + unquote(uri.password)
    at = "@" if uri.user is not None else ""
    port = f":{uri.port}" if uri.port is not None else ""
    params = "".join(
        f";{k.lower()}" if v is None else f";{k.lower()}={unquote(v).lower()}"
        for k, v in sorted(uri.params.items(), key=lambda kv: kv[0].lower())
    )
    headers = ""
    if uri.headers:
        headers = "?" + "&".join(sorted(unquote(h).lower() for h in uri.headers.split("&")))
    return f"{uri.scheme.lower()}:{user}{at}{uri.host.lower()}{port}{params}{headers}"


@dataclass(frozen=True, slots=True)
class Binding:
    """One registered contact of an address-of-record.

    ``contact`` keeps the Contact value as registered (display name, URI with its URI
    parameters, header parameters such as ``q`` or ``+sip.instance``) without ``expires``.
    Treat it as read-only. ``expires_at`` is wall-clock seconds.
    """

    aor: str
    contact: NameAddr
    expires_at: float
    call_id: str
    cseq: int
    q: float = 1.0
    instance: str | None = None
    reg_id: int | None = None
    source: Source | None = None
    user_agent: str | None = None

    @property
    def key(self) -> str:
        return contact_key(self.contact.uri)

    def alive(self, now: float) -> bool:
        return self.expires_at > now

    def expires_in(self, now: float) -> int:
        """Whole seconds left (rounded up, so a fresh 3600 s binding says 3600)."""
        return max(0, math.ceil(self.expires_at - now - 1e-6))

    def contact_with_expires(self, now: float) -> NameAddr:
        """The Contact value for a 200 OK: the registered one plus ``;expires=N``."""
        out = self.contact.copy()
        out.params.pop("expires", None)
        out.params["expires"] = str(self.expires_in(now))
        return out


@dataclass(frozen=True, slots=True)
class Added:
    binding: Binding


@dataclass(frozen=True, slots=True)
class Refreshed:
    binding: Binding


@dataclass(frozen=True, slots=True)
class Removed:
    aor: str
    contact_key: str


@dataclass(frozen=True, slots=True)
class RemovedAll:
    aor: str


BindingChange = Added | Refreshed | Removed | RemovedAll


class LocationService:
    """In-memory bindings: AOR -> {contact key -> Binding}. Pure data, no I/O."""

    def __init__(self) -> None:
        self._aors: dict[str, dict[str, Binding]] = {}

    def __len__(self) -> int:
        return sum(len(b) for b in self._aors.values())

    def aors(self) -> list[str]:
        return list(self._aors)

    def lookup(self, aor: str, now: float) -> list[Binding]:
        """The live bindings of ``aor``, highest ``q`` first (registration order among equals)."""
        found = self._aors.get(aor)
        if not found:
            return []
        return sorted((b for b in found.values() if b.alive(now)), key=lambda b: -b.q)

    def live(self, aor: str, now: float) -> dict[str, Binding]:
        """The live bindings of ``aor`` by contact key (a copy)."""
        return {k: b for k, b in self._aors.get(aor, {}).items() if b.alive(now)}

    def load(self, bindings: Iterable[Binding], now: float) -> int:
        """Fill from the store at start-up, dropping expired bindings; returns how many were kept."""
        kept = 0
        for b in bindings:
            if b.alive(now):
                self._aors.setdefault(b.aor, {})[b.key] = b
                kept += 1
        return kept

    def expire(self, now: float) -> list[Binding]:
        """Remove and return every binding that has expired at ``now``."""
        gone: list[Binding] = []
        for aor in list(self._aors):
            entries = self._aors[aor]
            dead = [k for k, b in entries.items() if not b.alive(now)]
            for k in dead:
                gone.append(entries.pop(k))
            if not entries:
                del self._aors[aor]
        return gone

    def apply(self, changes: Iterable[BindingChange]) -> None:
        """Apply registrar changes in order (the registrar does this itself)."""
        for ch in changes:
            if isinstance(ch, Added | Refreshed):
                b = ch.binding
                self._aors.setdefault(b.aor, {})[b.key] = b
            elif isinstance(ch, Removed):
                entries = self._aors.get(ch.aor)
                if entries is not None:
                    entries.pop(ch.contact_key, None)
                    if not entries:
                        del self._aors[ch.aor]
            else:
                self._aors.pop(ch.aor, None)


@dataclass(slots=True)
class RegisterResult:
    """What ``handle_register`` decided: send ``response``, persist ``changes`` in order.

    ``aor`` and ``auth`` are for the caller's log event (``auth.reason`` never goes on the wire).
    """

    response: Response
    changes: list[BindingChange] = field(default_factory=list)
    aor: str | None = None
    auth: AuthResult | None = None


class _Reject(Exception):
    """Internal: abort processing with this status (never escapes ``handle_register``)."""

    def __init__(self, status: int, reason: str, headers: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers


def _delta_seconds(text: str, what: str) -> int:
    # delta-seconds = 1*DIGIT (RFC 3261 25.1); huge values are clamped later.
    t = text.strip()
    if not t.isascii() or not t.isdigit():
        raise _Reject(400, f"Invalid {what}")
    digits = t.lstrip("0") or "0"
    # Anything beyond 2**32-1 seconds (RFC 3261 20.19) is clamped to max_expires anyway.
    return int(digits) if len(digits) <= 10 else 2**32 - 1


def _qvalue(text: str | None) -> float:
    # qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
    if text is None:
        return 1.0
    try:
        q = float(text)
    except ValueError:
        raise _Reject(400, "Invalid q value") from None
    if not 0.0 <= q <= 1.0:
        raise _Reject(400, "Invalid q value")
    return q


def _unquote_param(v: str | None) -> str | None:
    if v is not None and len(v) >= 2 and v[0] == '"' and v[-1] == '"':
        return v[1:-1]
    return v


class Registrar:
    """RFC 3261 10.3 for the domains in ``domain_names`` (a set, or a callable read per request).

    ``aor_domain``: when set, an AOR registered under any of our domain names is stored under this
    one (``sip:bob@127.0.0.1`` and ``sip:bob@demo.test`` become the same ``sip:bob@demo.test``).
    """

    def __init__(
        self,
        domain_names: Callable[[], frozenset[str]] | frozenset[str],
        authenticator: DigestAuthenticator,
        credentials_lookup: Callable[[str], SipCredentials | None],
        location: LocationService,
        *,
        min_expires: int = 60,
        max_expires: int = 3600,
        default_expires: int = 3600,
        max_contacts: int = 10,
        aor_domain: str | None = None,
    ) -> None:
        if not 0 < min_expires <= default_expires <= max_expires:
            raise ValueError("need 0 < min_expires <= default_expires <= max_expires")
        self._domain_names = domain_names
        self.authenticator = authenticator
        self.credentials_lookup = credentials_lookup
        self.location = location
        self.min_expires = min_expires
        self.max_expires = max_expires
        self.default_expires = default_expires
        self.max_contacts = max_contacts
        self.aor_domain = aor_domain.lower() if aor_domain else None

    def domains(self) -> frozenset[str]:
        names = self._domain_names() if callable(self._domain_names) else self._domain_names
        return frozenset(_bare(n) for n in names)

    def aor(self, uri: Uri) -> str:
        """The canonical AOR of a SIP URI (RFC 3261 10.3 step 5): no params, user unescaped."""
        host = self.aor_domain if self.aor_domain and _bare(uri.host) in self.domains() else uri.host.lower()
        user = uri.user_unescaped
        return f"{uri.scheme.lower()}:{user}@{host}" if user else f"{uri.scheme.lower()}:{host}"

    def handle_register(self, request: Request, source: tuple[str, int, str], now: float) -> RegisterResult:
        if request.method != "REGISTER":
            raise LocalProtocolError(f"handle_register got a {request.method}")
        auth: AuthResult | None = None
        aor: str | None = None
        try:
            domains = self.domains()
            # Step 1: the Request-URI names a domain we are the registrar for.
            if not request.uri.is_sip or _bare(request.uri.host) not in domains:
                raise _Reject(404, "Not Found")
            # Step 2: Require.
            unsupported = [
                opt
                for v in request.header_values("Require")
                for opt in [v.strip()]
                if opt and opt.lower() not in SUPPORTED_EXTENSIONS
            ]
            if unsupported:
                raise _Reject(420, "Bad Extension", (("Unsupported", ", ".join(unsupported)),))
            # Step 3: authenticate.
            auth = self.authenticator.verify(request, self.credentials_lookup, now)
            if not auth.ok:
                return RegisterResult(
                    self._respond(
                        request, 401, "Unauthorized", self.authenticator.challenge(now, stale=auth.stale)
                    ),
                    auth=auth,
                )
            # Steps 4-5: the AOR from To, and the user may change it.
            to_uri = request.to.uri
            if not to_uri.is_sip or to_uri.opaque is not None:
                raise _Reject(400, "To must be a SIP or SIPS URI")
            if to_uri.user_unescaped != auth.username:
                raise _Reject(403, "Forbidden")
            if _bare(to_uri.host) not in domains:
                raise _Reject(404, "Not Found")
            aor = self.aor(to_uri)
            # Steps 6-8.
            changes, current = self._update(request, aor, Source(*source), now)
        except _Reject as r:
            return RegisterResult(self._respond(request, r.status, r.reason, r.headers), aor=aor, auth=auth)
        self.location.apply(changes)
        response = self._respond(request, 200, "OK", (("Date", formatdate(now, usegmt=True)),))
        response.contact = [b.contact_with_expires(now) for b in current]
        return RegisterResult(response, changes, aor=aor, auth=auth)

    # -- internals --------------------------------------------------------------------------

    def _respond(
        self, request: Request, status: int, reason: str, headers: Iterable[tuple[str, str]] = ()
    ) -> Response:
        return make_response(request, status, reason, to_tag=new_tag(), headers=tuple(headers))

    def _update(
        self, request: Request, aor: str, source: Source, now: float
    ) -> tuple[list[BindingChange], list[Binding]]:
        """Steps 6-8: the changes and the resulting live bindings, or ``_Reject``; atomic."""
        stored = self.location.live(aor, now)
        call_id = request.call_id
        cseq = request.cseq.number
        expires_text = request.header("Expires")
        header_expires = _delta_seconds(expires_text, "Expires") if expires_text is not None else None
        contacts = request.contact

        def check_order(b: Binding) -> None:
            # Step 7: same Call-ID needs a higher CSeq, else the whole request fails.
            if b.call_id == call_id and cseq <= b.cseq:
                raise _Reject(500, "Out of Order CSeq")

        if any(c.star for c in contacts):
            # Step 6: "*" only alone and with Expires: 0.
            if len(contacts) != 1 or header_expires != 0:
                raise _Reject(400, "Invalid Contact: *")
            for b in stored.values():
                check_order(b)
            return [RemovedAll(aor)], []

        # Expiry per contact, and 423 before anything changes.
        wanted: list[tuple[NameAddr, int]] = []
        for c in contacts:
            if not c.uri.is_sip or c.uri.opaque is not None:
                raise _Reject(400, "Contact must be a SIP or SIPS URI")
            param = c.params.get("expires")
            if param is not None:
                exp = _delta_seconds(param, "expires")
            elif header_expires is not None:
                exp = header_expires
            else:
                exp = self.default_expires
            wanted.append((c, min(exp, self.max_expires)))
        if any(0 < exp < self.min_expires for _, exp in wanted):
            raise _Reject(423, "Interval Too Brief", (("Min-Expires", str(self.min_expires)),))

        result = dict(stored)
        touched: list[str] = []
        user_agent = request.header("User-Agent")
        for c, exp in wanted:
            key = contact_key(c.uri)
            old = stored.get(key)
            if old is not None:
                check_order(old)
            if key not in touched:
                touched.append(key)
            if exp == 0:
                result.pop(key, None)
                continue
            params = {k: v for k, v in c.params.items() if k != "expires"}
            reg_id_text = params.get("reg-id")
            result[key] = Binding(
                aor=aor,
                contact=NameAddr(c.uri.copy(), c.display, params),
                expires_at=now + exp,
                call_id=call_id,
                cseq=cseq,
                q=_qvalue(params.get("q")),
                instance=_unquote_param(params.get("+sip.instance")),
                reg_id=int(reg_id_text) if reg_id_text and reg_id_text.isdigit() else None,
                source=source,
                user_agent=user_agent,
            )
        if len(result) > self.max_contacts and len(result) > len(stored):
            raise _Reject(403, "Too Many Contacts")

        changes: list[BindingChange] = []
        for key in touched:
            new = result.get(key)
            if new is None:
                changes.append(Removed(aor, key))
            elif key in stored:
                changes.append(Refreshed(new))
            else:
                changes.append(Added(new))
        current = sorted(result.values(), key=lambda b: -b.q)
        return changes, current


def _bare(host: str) -> str:
    h = host.strip()
    if h.startswith("[") and h.endswith("]"):
        h = h[1:-1]
    return h.lower()
