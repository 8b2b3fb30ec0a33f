"""The guide's admin flows in a real browser: Playwright driving Debian's Chromium against the real app.

Bob's flow ends with "play a voicemail": a real WAV (1 s, 440 Hz) and its row, as the media server
leaves them; the page's ``<audio>`` element loads it from the API and plays it.

Each test saves a screenshot under ``test-output/`` when it fails.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from admin_server import AdminServer, add_voicemail, admin_server, run_store  # noqa: F401  (fixture)
from playwright.sync_api import Browser, Page, expect, sync_playwright

from policy.store import Store

pytestmark = pytest.mark.browser

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
OUTPUT = Path(__file__).resolve().parent.parent / "test-output"
STOCKHOLM = ZoneInfo("Europe/Stockholm")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield b
        finally:
            b.close()


@contextmanager
def screenshot_on_failure(page: Page, name: str) -> Iterator[None]:
    try:
        yield
    except BaseException:
        OUTPUT.mkdir(exist_ok=True)
        try:
            page.screenshot(path=str(OUTPUT / f"{name}.png"), full_page=True)
        except Exception:
            pass
        raise


def _login(page: Page, server: AdminServer, username: str, password: str, *, sv: bool = True) -> None:
    page.goto(f"{server.url}/")
    expect(page).to_have_url(re.compile(r"/login"))
    page.get_by_label("Användarnamn" if sv else "Username").fill(username)
    page.get_by_label("Lösenord" if sv else "Password").fill(password)
    page.get_by_role("button", name="Logga in" if sv else "Log in").click()


def _bob(server: AdminServer) -> Any:
    async def read(store: Store) -> Any:
        return await store.get_user("bob")

    return run_store(server.db_url, read)


def test_admin_changes_bobs_groups_and_company_hours(browser: Browser, admin_server: AdminServer) -> None:  # noqa: F811
    context = browser.new_context(locale="sv-SE")
    page = context.new_page()
    page.set_default_timeout(10_000)
    with screenshot_on_failure(page, "admin_groups_and_hours"):
        _login(page, admin_server, "admin", "admin-demo")
        # Användare -> open bob.
        page.get_by_role("link", name="Användare", exact=True).click()
        page.get_by_role("link", name="Bob Berg").click()
        expect(page.get_by_role("heading", name="Medlemskap i användargrupper")).to_be_visible()
        default = page.locator('input[name="group"][value="no_answer.both.voicemail.30"]')
        alt20 = page.locator('input[name="group"][value="no_answer.fixed.alt_number.20"]')
        expect(default).to_be_checked()
        expect(alt20).not_to_be_checked()
        fixed_no_answer = page.locator('tr[data-situation="no_answer"] td[data-number="fixed"]')
        expect(fixed_no_answer).to_contain_text("no_answer.both.voicemail.30")
        expect(fixed_no_answer).to_contain_text("efter 30 s: röstbrevlåda")  # the guide's words

        # Untick the default no-answer group, tick "20 sek Fastnr -> Alt.nr", Spara.
        default.uncheck()
        page.get_by_role("checkbox", name=re.compile(r"^20 sek Fastnr -> Alt\.nr")).check()
        page.get_by_role("button", name="Spara").first.click()
        expect(page.get_by_role("status")).to_have_text("Sparat.")
        expect(alt20).to_be_checked()
        expect(default).not_to_be_checked()
        # The new table: a call to the fixed number goes to the alternative number after 20 s.
        expect(fixed_no_answer).to_contain_text("no_answer.fixed.alt_number.20")
        expect(fixed_no_answer).to_contain_text("efter 20 s: vidarekopplas till +4681000000")
        saved = frozenset(
            {"activity.both.announcement_voicemail", "busy.both.voicemail", "no_answer.fixed.alt_number.20"}
        )
        assert _bob(admin_server).groups == saved

        # Tick a conflicting group: the message beside the boxes, the admin's ticks kept, nothing changed.
        page.locator('input[name="group"][value="no_answer.fixed.voicemail.30"]').check()
        page.get_by_role("button", name="Spara").first.click()
        error = page.locator("#group-error")
        expect(error).to_be_visible()
        expect(error).to_contain_text("no_answer.fixed.alt_number.20")
        expect(error).to_contain_text("no_answer.fixed.voicemail.30")
        expect(error).to_contain_text("no_answer.fixed")
        expect(page.locator('input[name="group"][value="no_answer.fixed.voicemail.30"]')).to_be_checked()
        expect(page.locator('input[name="group"][value="no_answer.fixed.alt_number.20"]')).to_be_checked()
        assert _bob(admin_server).groups == saved

        # Användargrupper: bob is listed under his new group.
        page.get_by_role("link", name="Användargrupper").click()
        expect(page.locator('tr[id="group-no_answer.fixed.alt_number.20"]')).to_contain_text("Bob Berg")

        # Tjänster -> Arbetstid -> Konfigurera för alla användare.
        page.get_by_role("link", name="Arbetstid").click()
        page.get_by_role("link", name="Konfigurera för alla användare").click()
        page.get_by_label("Måndag").fill("08:00-12:00, 13:00-17:00")
        page.get_by_label("Fredag").fill("08:00-15:00")
        page.get_by_label("Lördag").fill("10:00-14:00")
        page.get_by_label("Stängda dagar").fill("2026-12-24\n2026-12-31")
        page.locator("#hours-form").get_by_role("button", name="Spara").click()
        expect(page.get_by_role("status")).to_have_text("Sparat.")
        expect(page.get_by_label("Måndag")).to_have_value("08:00-12:00, 13:00-17:00")

        async def company_hours(store: Store) -> Any:
            return await store.get_hours("company", None)

        hours = run_store(admin_server.db_url, company_hours)
        monday = sorted((iv.start, iv.end) for iv in hours.intervals if iv.weekday == 0)
        assert monday == [(time(8), time(12)), (time(13), time(17))]
        assert [(iv.start, iv.end) for iv in hours.intervals if iv.weekday == 5] == [(time(10), time(14))]
        assert hours.closed_dates == frozenset({date(2026, 12, 24), date(2026, 12, 31)})

        # A bad interval is refused with the message, keeping what was typed.
        page.get_by_label("Tisdag").fill("17:00-08:00")
        page.locator("#hours-form").get_by_role("button", name="Spara").click()
        expect(page.get_by_role("alert")).to_contain_text("17:00-08:00")
        expect(page.get_by_label("Tisdag")).to_have_value("17:00-08:00")

        # The language switch.
        page.get_by_role("link", name="EN").click()
        expect(page.get_by_role("link", name="Users", exact=True)).to_be_visible()
    context.close()


def test_bob_sets_meeting_until_1430(browser: Browser, admin_server: AdminServer) -> None:  # noqa: F811
    context = browser.new_context(locale="en-GB")
    page = context.new_page()
    page.set_default_timeout(10_000)
    # Tomorrow (Stockholm) at 14:30 is always in the future.
    day = (datetime.now(STOCKHOLM) + timedelta(days=1)).date()
    with screenshot_on_failure(page, "bob_meeting"):
        _login(page, admin_server, "bob", "bob-demo", sv=False)
        expect(page).to_have_url(re.compile(r"/users/bob$"))
        expect(page.get_by_role("heading", name=re.compile("My settings"))).to_be_visible()
        page.get_by_label("Activity", exact=True).select_option(label="Meeting")
        page.get_by_label("Until", exact=True).fill(day.isoformat())
        page.get_by_label("Time", exact=True).fill("14:30")
        page.locator("#activity-form").get_by_role("button", name="Save").click()
        expect(page.get_by_role("status")).to_have_text("Saved.")
        expect(page.locator("#current-activity")).to_contain_text("Meeting")
        expect(page.locator("#current-activity")).to_contain_text(f"{day.isoformat()} 14:30")
        # The table of what happens now reflects the activity group.
        expect(page.locator('tr[data-situation="activity"] td[data-number="fixed"]')).to_contain_text(
            "activity.both.announcement_voicemail"
        )

        bob = _bob(admin_server)
        assert bob.activity.kind == "meeting"
        assert bob.activity.until == datetime.combine(day, time(14, 30), tzinfo=STOCKHOLM)

        # Voicemail setting and caller-ID role (time-based).
        page.get_by_label("Play activity message").check()
        page.get_by_label("Caller-ID role").select_option("time_based")
        page.locator("#settings-form").get_by_role("button", name="Save").click()
        expect(page.get_by_role("status")).to_have_text("Saved.")
        bob = _bob(admin_server)
        assert bob.play_activity_message is True and bob.caller_id_role == "time_based"

        # Bob's own call history is on the page; alice's page is not his.
        expect(page.get_by_role("heading", name="Call history")).to_be_visible()
        answer = page.goto(f"{admin_server.url}/users/alice")
        assert answer is not None and answer.status == 403

        # Play a voicemail.
        msg_id, wav = add_voicemail(admin_server, "bob", caller="sip:+46701234567@demo.test")
        page.goto(f"{admin_server.url}/users/bob")
        row = page.locator(f"#voicemail-{msg_id}")
        expect(page.get_by_role("heading", name="Voicemail", exact=True)).to_be_visible()
        expect(row).to_contain_text("sip:+46701234567@demo.test")
        expect(row.locator(".vm-state")).to_have_text("New")
        audio = row.locator("audio[controls]")
        expect(audio).to_have_attribute("src", f"/api/v1/users/bob/voicemail/{msg_id}/audio")
        duration = audio.evaluate(LOADED_DURATION)
        assert 0.9 < duration < 1.2, duration
        played = audio.evaluate(PLAY_A_LITTLE)
        assert played > 0.1, played
        # Mark it heard, then delete it: the file and the row go.
        row.get_by_role("button", name="Mark as heard").click()
        expect(page.get_by_role("status")).to_have_text("Saved.")
        expect(page.locator(f"#voicemail-{msg_id} .vm-state")).to_have_text("Heard")
        page.locator(f"#voicemail-{msg_id}").get_by_role("button", name="Delete").click()
        expect(page.get_by_role("status")).to_have_text("The message was deleted.")
        expect(page.locator(f"#voicemail-{msg_id}")).to_have_count(0)
        assert not wav.exists()
    context.close()


LOADED_DURATION = """async (audio) => {
    if (audio.readyState < 1) {
        await new Promise((resolve, reject) => {
            audio.addEventListener("loadedmetadata", resolve, { once: true });
            const failed = () => reject(new Error("audio error " + audio.error?.code));
            audio.addEventListener("error", failed, { once: true });
            audio.load();
        });
    }
    return audio.duration;
}"""

PLAY_A_LITTLE = """async (audio) => {
    audio.muted = true;  // muted playback needs no user gesture
    await audio.play();
    await new Promise((resolve) => setTimeout(resolve, 500));
    audio.pause();
    return audio.currentTime;
}"""
