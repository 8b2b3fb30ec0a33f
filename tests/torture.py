"""The RFC 4475 / RFC 5118 torture corpus as data: wire bytes plus what Vidare must do with each.

Used by ``tests/test_torture.py`` (parser and UAS checks) and by the over-the-wire test against
the running server. ``MANIFEST.tsv`` states what the RFCs expect; the table below pins down the
choice Vidare makes where the RFC allows several (see ``acceptable_codes``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = ["CASES", "CORPUS_DIR", "TortureCase", "wire_bytes"]

CORPUS_DIR = Path(__file__).parent / "data" / "sip-torture"

WireAction = Literal["reject", "drop", "process"]


@dataclass(frozen=True, slots=True)
class TortureCase:
    """One corpus file.

    - ``parses``: our parser accepts ``data`` (``False``: it raises RemoteProtocolError).
    - ``status_hint``: the RemoteProtocolError's status_hint when it does not parse.
    - ``uas_code``: what ``check_request`` answers when it parses (``None``: no objection).
    - ``wire_action``: what a Vidare server does with the datagram: ``reject`` (answers
      ``wire_code``), ``drop`` (sends nothing: broken or stray responses) or ``process`` (normal
      processing; the answer depends on routing/registrar state, ``wire_code`` is ``None``).
    - ``acceptable_codes``: every code the RFC allows for ``reject`` (includes ``wire_code``),
      or the plausible answers of normal processing.
    """

    file: str
    rfc: str
    section: str
    kind: str
    expected: str
    data: bytes
    parses: bool
    status_hint: int | None
    uas_code: int | None
    wire_action: WireAction
    wire_code: int | None
    acceptable_codes: frozenset[int]


_CL_RE = re.compile(rb"^(Content-Length|l)[ \t]*:[ \t]*[0-9]+", re.IGNORECASE | re.MULTILINE)


def wire_bytes(file: str, raw: bytes) -> bytes:
    """The datagram to send for a corpus file.

    RFC 4475 files are wire format already. RFC 5118 files were archived with bare LF, some
    without the empty line closing the header section and with wrong Content-Lengths: per the
    corpus README, LF becomes CRLF, the header section is closed and Content-Length is set to
    the real body length.
    """
    if not file.startswith("rfc5118/"):
        return raw
    data = raw.replace(b"\n", b"\r\n")
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        head = head.removesuffix(b"\r\n")
        body = b""
    head = _CL_RE.sub(lambda m: m.group(1) + b": " + str(len(body)).encode(), head)
    return head + b"\r\n\r\n" + body


# file stem -> (parses, status_hint, uas_code, wire_action, wire_code, acceptable_codes)
_Expect = tuple[bool, int | None, int | None, WireAction, int | None, frozenset[int]]


def _ok(uas: int | None = None, *also: int) -> _Expect:
    if uas is None:
        return (True, None, None, "process", None, frozenset(also))
    return (True, None, uas, "reject", uas, frozenset((uas, *also)))


def _rej(code: int = 400, *also: int) -> _Expect:
    return (False, code, None, "reject", code, frozenset((code, *also)))


_DROP_BROKEN: _Expect = (False, None, None, "drop", None, frozenset())
# A well-formed response that matches no transaction of ours: the server drops it.
_DROP_RESPONSE: _Expect = (True, None, None, "drop", None, frozenset())

# REGISTER to a domain that is not ours (example.com): 404 (we are not its registrar); for one
# of ours, 401 (challenge) or 200. The parsing of these cases is checked in test_torture.py and
# the binding's parameter placement in test_registrar.py.
_REGISTRAR_CODES = (200, 401, 404)

_EXPECT: dict[str, _Expect] = {
    # RFC 4475 3.1.1: valid
    "rfc4475/wsinv.dat": _ok(),
    "rfc4475/intmeth.dat": _ok(501),
    "rfc4475/esc01.dat": _ok(),
    "rfc4475/escnull.dat": _ok(),
    "rfc4475/esc02.dat": _ok(501),
    "rfc4475/lwsdisp.dat": _ok(),
    "rfc4475/longreq.dat": _ok(),
    "rfc4475/dblreq.dat": _ok(),
    "rfc4475/semiuri.dat": _ok(),
    "rfc4475/transports.dat": _ok(),
    "rfc4475/mpart01.dat": _ok(),
    "rfc4475/unreason.dat": _DROP_RESPONSE,
    "rfc4475/noreason.dat": _DROP_RESPONSE,
    # RFC 4475 3.1.2: invalid
    "rfc4475/badinv01.dat": _rej(),
    "rfc4475/clerr.dat": _rej(),
    "rfc4475/ncl.dat": _rej(),
    "rfc4475/scalar02.dat": _rej(),
    "rfc4475/scalarlg.dat": _DROP_BROKEN,
    "rfc4475/quotbal.dat": _rej(),
    "rfc4475/ltgtruri.dat": _rej(),
    "rfc4475/lwsruri.dat": _rej(),
    "rfc4475/lwsstart.dat": _rej(),
    "rfc4475/trws.dat": _rej(),
    "rfc4475/escruri.dat": _rej(),
    # The RFC allows ignoring a bad Date that does not matter to processing; it never does here.
    "rfc4475/baddate.dat": _ok(),
    "rfc4475/regbadct.dat": _rej(),
    "rfc4475/badaspec.dat": _rej(),
    "rfc4475/baddn.dat": _rej(),
    "rfc4475/badvers.dat": _rej(505),
    "rfc4475/mismatch01.dat": _rej(),
    "rfc4475/mismatch02.dat": _rej(501, 400),
    "rfc4475/bigcode.dat": _DROP_BROKEN,
    # RFC 4475 3.2, 3.3, 3.4
    # OPTIONS falls back to RFC 2543 matching and is answered normally (400 also allowed).
    "rfc4475/badbranch.dat": _ok(None, 200, 400),
    "rfc4475/insuf.dat": _rej(),
    "rfc4475/unkscm.dat": _ok(416),
    "rfc4475/novelsc.dat": _ok(416, 404),
    "rfc4475/unksm2.dat": _ok(400),
    "rfc4475/bext01.dat": _ok(420),
    "rfc4475/invut.dat": _ok(415),
    "rfc4475/regaut01.dat": _ok(None, *_REGISTRAR_CODES),
    "rfc4475/multi01.dat": _rej(),
    "rfc4475/mcl01.dat": _rej(),
    "rfc4475/bcast.dat": _DROP_RESPONSE,
    # Vidare is the endpoint for an OPTIONS to itself: processed normally (483 only when proxying).
    "rfc4475/zeromf.dat": (True, None, None, "reject", 200, frozenset({200, 483})),
    "rfc4475/cparam01.dat": _ok(None, *_REGISTRAR_CODES),
    "rfc4475/cparam02.dat": _ok(None, *_REGISTRAR_CODES),
    "rfc4475/regescrt.dat": _ok(None, *_REGISTRAR_CODES),
    "rfc4475/sdp01.dat": _ok(406, 400),
    "rfc4475/inv2543.dat": _ok(),
    # Unreferenced archive member: malformed by RFC 3261 (no SIP-Version, a line without colon).
    # It has no Via, so no response can be routed (RFC 3261 18.2.2): the server can only drop it.
    "rfc4475/test.dat": (False, 400, None, "drop", None, frozenset()),
    # RFC 5118
    "rfc5118/ipv6-good.dat": _ok(),
    "rfc5118/ipv6-bad.dat": _rej(),
    "rfc5118/port-ambiguous.dat": _ok(),
    "rfc5118/port-unambiguous.dat": _ok(),
    "rfc5118/via-received-param-with-delim.dat": _ok(),
    "rfc5118/via-received-param-no-delim.dat": _ok(),
    "rfc5118/ipv6-in-sdp.dat": _ok(),
    "rfc5118/mult-ip-in-header.dat": _ok(),
    "rfc5118/mult-ip-in-sdp.dat": _ok(),
    "rfc5118/ipv4-mapped-ipv6.dat": _ok(),
    "rfc5118/ipv6-bug-abnf-3-colons.dat": _ok(),
    "rfc5118/ipv6-correct-abnf-2-colons.dat": _ok(),
}


def _load() -> list[TortureCase]:
    cases: list[TortureCase] = []
    lines = (CORPUS_DIR / "MANIFEST.tsv").read_text(encoding="utf-8").splitlines()
    for line in lines[1:]:
        if not line.strip():
            continue
        file, rfc, section, kind, expected, _summary = line.split("\t")
        parses, hint, uas, action, wire, acceptable = _EXPECT[file]
        data = wire_bytes(file, (CORPUS_DIR / file).read_bytes())
        cases.append(
            TortureCase(file, rfc, section, kind, expected, data, parses, hint, uas, action, wire, acceptable)
        )
    missing = set(_EXPECT) - {c.file for c in cases}
    if missing:
        raise RuntimeError(f"expectations for files not in MANIFEST.tsv: {sorted(missing)}")
    return cases


CASES: list[TortureCase] = _load()
