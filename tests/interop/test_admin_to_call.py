"""Issue 6 acceptance, end to end: the group change an admin makes in the browser decides the very
next SIP call.

One real `vidare serve` process runs the SIP server and the admin web (on free loopback ports), with
an operator's extra catalogue holding ``no_answer.fixed.alt_number.3`` ("3 sek Fastnr -> Alt.nr",
the 20 s group's short test variant, so the test takes seconds rather than 20). Around it:

* bob's softphone: a SIPp UAS that registered with digest and rings (180) without answering;
* the mobile network (``trunks.mobile``): a SIPp UAS that rings without answering (bob's mobile);
* the PSTN (``trunks.pstn``): a SIPp UAS that answers, standing as the alternative number's
  destination (the demo company's alternative number +4681000000 is external, so it leaves there).

Chromium (Playwright, Debian's binary) logs in as admin, opens bob's group membership, unticks
``no_answer.both.voicemail.30``, ticks the short alt-number group, saves and sees the new table.

The caller: both trunk ports are taken by UAS peers, and a trusted trunk is identified by source
address *and* port, so a trunk caller would have to share a port with one of them. The caller is
therefore alice's softphone (an authenticated internal call to bob's fixed number, decided under
bob's rules, exactly as a call from outside would be); the PSTN UAS receives only the forwarded
INVITE. That the same call would have gone to voicemail after 30 s before the change is shown
through the explain API (the decision trace for a hypothetical call) rather than a 30 s call.

On failure a screenshot of the browser page is saved under ``test-output/``.
"""

from __future__ import annotations

import concurrent.futures
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from interop.callpeers import (
    CallServer,
    Peer,
    call_out,
    call_server,
    debug_dump,
    free_port,
    header,
    received_at,
    register_phone,
    ruri,
    start_peer,
    store_call,
)

pytestmark = [pytest.mark.interop, pytest.mark.browser]

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
OUTPUT = Path(__file__).resolve().parents[2] / "test-output"

BOB_FIXED = "+4681001002"
BOB_MOBILE = "+46701001002"
ALICE_FIXED = "+4681001001"
RECEPTION = "+4681000000"  # the demo company's alternative number (external: via the PSTN trunk)
DEFAULT_NO_ANSWER = "no_answer.both.voicemail.30"
SHORT_GROUP = "no_answer.fixed.alt_number.3"
SHORT_NAME = "3 sek Fastnr -> Alt.nr"
SECONDS = 3
ALT_PLAN = ("alt_number", SECONDS, RECEPTION)  # (action, seconds, target) of the short group's no-answer
_SEPARATOR = "----------------------------------------------- "


def _write_catalogue(path: Path) -> Path:
    """An operator's extra catalogue (``policy.extra_catalogue``, the format of policy/catalogue.toml)."""
    path.write_text(
        "[[group]]\n"
        f'id = "{SHORT_GROUP}"\n'
        f'name = "{SHORT_NAME}"\n'
        f'name_en = "{SECONDS} s fixed -> alternative number"\n'
        'situation = "no_answer"\n'
        'number = "fixed"\n'
        'action = "alt_number"\n'
        f"seconds = {SECONDS}\n"
        f'description = "Test variant: the alternative number after {SECONDS} seconds (fixed number)."\n'
    )
    return path


@contextmanager
def _server(tmp_path: Path) -> Iterator[tuple[CallServer, str]]:
    """`vidare serve` with SIP and the admin web on free ports; later ``--set``s win over CallServer's.

    Yields once SIP answers OPTIONS; the admin web may still be starting (see ``_wait_admin``)."""
    admin_port = free_port()
    catalogue = _write_catalogue(tmp_path / "extra-catalogue.toml")
    extra = [
        "--set",
        "admin.enabled=true",
        "--set",
        f"admin.listen=127.0.0.1:{admin_port}",
        "--set",
        f"policy.extra_catalogue={catalogue}",
    ]
    with call_server(tmp_path, extra) as server:
        yield server, f"http://127.0.0.1:{admin_port}"


def _wait_admin(server: CallServer, url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/login", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the admin web did not come up:\n{server.log_path.read_text()[-4000:]}")
        time.sleep(0.1)


@contextmanager
def _screenshot_on_failure(page: Page, name: str) -> Iterator[None]:
    try:
        yield
    except BaseException:
        OUTPUT.mkdir(exist_ok=True)
        try:
            page.screenshot(path=str(OUTPUT / f"{name}.png"), full_page=True)
        except Exception:
            pass
        raise


def _sent_at(peer: Peer, start: str) -> list[float]:
    """Wall-clock times at which ``peer`` sent messages starting with ``start`` (from SIPp's trace)."""
    out = []
    for block in peer.messages.split(_SEPARATOR)[1:]:
        stamp, _, rest = block.partition("\n")
        head, _, body = rest.partition("\n")
        if "message sent" in head and body.strip().startswith(start):
            out.append(datetime.strptime(stamp.strip(), "%Y-%m-%d %H:%M:%S.%f").timestamp())
    return out


def _explain(page: Page, url: str) -> dict[str, Any]:
    """The explain API's plan (with the browser's admin session) for alice calling bob's fixed number."""
    me = page.request.get(f"{url}/api/v1/me")
    assert me.ok, me.text()
    answer = page.request.post(
        f"{url}/api/v1/explain",
        data={"to": BOB_FIXED, "from": ALICE_FIXED},
        headers={"X-CSRF-Token": str(me.json()["csrf"])},
    )
    assert answer.ok, answer.text()
    plan: dict[str, Any] = answer.json()["plan"]
    return plan


def _in_thread(fn: Any, *args: Any) -> Any:
    """``fn(*args)`` in a thread of its own: Playwright's sync API keeps an event loop in this one."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn, *args).result()


def _wait_reloaded(server: CallServer, version: Any, timeout: float = 3.0) -> float:
    """Seconds until the running SIP server logged ``directory.reloaded`` at ``version`` or later."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        seen = [e.get("version") for e in server.events("directory.reloaded")]
        if any(isinstance(v, int) and v >= version for v in seen):
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"the server did not reload the directory (version {version}) within {timeout} s")


def test_group_change_in_the_browser_decides_the_next_call(tmp_path: Path) -> None:
    wd = tmp_path / "sipp"
    with _server(tmp_path) as (server, url), sync_playwright() as pw:
        phone_port = free_port()
        register_phone(server, "bob", "bob-demo", phone_port, wd)
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(locale="sv-SE")
        page = context.new_page()
        page.set_default_timeout(10_000)
        try:
            _wait_admin(server, url)
            with _screenshot_on_failure(page, "admin_to_call"):
                # Log in as admin, open bob's group membership.
                page.goto(f"{url}/")
                expect(page).to_have_url(re.compile(r"/login"))
                page.get_by_label("Användarnamn").fill("admin")
                page.get_by_label("Lösenord").fill("admin-demo")
                page.get_by_role("button", name="Logga in").click()
                page.get_by_role("link", name="Användare", exact=True).click()
                page.get_by_role("link", name="Bob Berg").click()
                expect(page.get_by_role("heading", name="Medlemskap i användargrupper")).to_be_visible()
                default = page.locator(f'input[name="group"][value="{DEFAULT_NO_ANSWER}"]')
                short = page.locator(f'input[name="group"][value="{SHORT_GROUP}"]')
                fixed_no_answer = page.locator('tr[data-situation="no_answer"] td[data-number="fixed"]')
                expect(default).to_be_checked()
                expect(short).not_to_be_checked()
                expect(fixed_no_answer).to_contain_text(DEFAULT_NO_ANSWER)

                # Before the change the same call would go to bob's voicemail after 30 s.
                before = _explain(page, url)["no_answer"]
                assert before["decided_by"] == DEFAULT_NO_ANSWER, before
                assert (before["action"], before["seconds"]) == ("voicemail", 30), before

                # Untick the default no-answer group, tick the short alt-number group, Spara.
                default.uncheck()
                page.get_by_role("checkbox", name=re.compile(rf"^{re.escape(SHORT_NAME)}")).check()
                page.get_by_role("button", name="Spara").first.click()
                expect(page.get_by_role("status")).to_have_text("Sparat.")
                saved = time.monotonic()
                expect(short).to_be_checked()
                expect(default).not_to_be_checked()
                expect(fixed_no_answer).to_contain_text(SHORT_GROUP)
                after = _explain(page, url)["no_answer"]
                assert after["decided_by"] == SHORT_GROUP, after
                assert (after["action"], after["seconds"], after["target"]) == ALT_PLAN, after

            # The SIP server sees the change within a second (it polls the directory version).
            version = _in_thread(store_call, server, "version")
            _wait_reloaded(server, version)
            assert time.monotonic() - saved < 2.0

            # The very next call: alice calls bob's fixed number; nobody answers.
            soft = start_peer("softphone", "call_uas_ring_cancel.xml", phone_port, wd)
            mobile = start_peer("mobile", "call_uas_ring_cancel.xml", server.mobile, wd)
            pstn = start_peer("reception", "call_uas_answer.xml", server.pstn, wd, subs={"ring": "100"})
            caller = call_out(server, wd, "alice", "alice-demo", BOB_FIXED)
            peers = (caller, soft, mobile, pstn)
            codes = [p.wait(30) for p in peers]
            assert codes == [0, 0, 0, 0], debug_dump(server, *peers)
        finally:
            context.close()
            browser.close()

    # The alternative number's trunk got the INVITE, not before the group's seconds had passed.
    (invite,) = pstn.received_requests("INVITE")
    assert invite.startswith(f"INVITE sip:{RECEPTION}@127.0.0.1:{server.pstn} "), invite
    (called,) = _sent_at(caller, "INVITE ")[-1:]  # the answer to the 407 challenge
    (forwarded,) = received_at(pstn, "INVITE ")
    assert SECONDS <= forwarded - called < SECONDS + 2.0, forwarded - called
    rang = received_at(mobile, "INVITE ")[0]
    assert SECONDS - 0.1 < forwarded - rang < SECONDS + 1.5, forwarded - rang
    # bob's phones rang and were cancelled when the timer fired.
    (m_invite,) = mobile.received_requests("INVITE")
    assert ruri(m_invite).startswith(f"sip:{BOB_MOBILE}@")
    assert soft.received_requests("INVITE") and soft.received_requests("CANCEL")
    assert mobile.received_requests("CANCEL")
    # The diversion names bob's fixed number.
    assert header(invite, "Diversion") == f"<sip:{BOB_FIXED}@demo.test>;reason=no-answer;counter=1"
    hi = header(invite, "History-Info") or ""
    assert f"<sip:{BOB_FIXED}@demo.test?Reason=SIP%3Bcause%3D408>;index=1" in hi, hi
    # The server's decision for this call cites the group ticked in the browser.
    decided = [e for e in server.events("route.decided") if e["plan"].get("no_answer")]
    assert len(decided) == 1, decided
    no_answer = decided[0]["plan"]["no_answer"]
    assert no_answer["decided_by"] == SHORT_GROUP, no_answer
    assert (no_answer["action"], no_answer["seconds"], no_answer["target"]) == ALT_PLAN, no_answer
