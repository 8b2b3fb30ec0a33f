"""Security of the admin app: logins, sessions, CSRF, per-user access, rate limit, password hashes."""

from __future__ import annotations

import re
from contextlib import closing
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from admin_server import (  # noqa: F401  (fixtures)
    AdminServer,
    add_voicemail,
    admin_server,
    bearer_token,
    csrf_of,
    login,
    run_store,
    session_client,
    shared_admin_server,
)

from policy.store import Store

PAGES = [
    "/",
    "/users",
    "/users/bob",
    "/groups",
    "/audit",
    "/services/hours",
    "/services/hours/company",
    "/services/hours/department/Sales",
    "/services/hours/user/bob",
]
FORM_POSTS = [
    "/logout",
    "/users/bob/groups",
    "/users/bob/activity",
    "/users/bob/settings",
    "/services/hours/company",
    "/services/hours/department/Sales",
    "/services/hours/user/bob",
    "/services/alt-number/company",
    "/services/alt-number/user/bob",
    "/users/bob/voicemail/1/heard",
    "/users/bob/voicemail/1/delete",
]


def _bob_groups(server: AdminServer) -> frozenset[str]:
    async def read(store: Store) -> frozenset[str]:
        return (await store.get_user("bob")).groups

    result: frozenset[str] = run_store(server.db_url, read)
    return result


def test_every_api_route_refuses_without_login(shared_admin_server: AdminServer) -> None:  # noqa: F811
    doc = httpx.get(f"{shared_admin_server.url}/api/v1/openapi.json").json()
    checked = 0
    with shared_admin_server.client() as client:
        for path, operations in doc["paths"].items():
            concrete = re.sub(
                r"\{[^}]+\}", lambda m: "1" if m.group(0) in ("{token_id}", "{message_id}") else "bob", path
            )
            for method in operations:
                kwargs: dict[str, Any] = {}
                if method in ("post", "put", "patch"):
                    kwargs["json"] = {}
                for headers in (
                    {},
                    {"Authorization": "Bearer not-a-token"},
                    {"Cookie": "vidare_session=forged"},
                ):
                    answer = client.request(method.upper(), concrete, headers=headers, **kwargs)
                    assert answer.status_code == 401, (
                        method,
                        concrete,
                        headers,
                        answer.status_code,
                        answer.text,
                    )
                checked += 1
    assert checked >= 25


def test_every_page_and_form_refuses_without_login(shared_admin_server: AdminServer) -> None:  # noqa: F811
    with shared_admin_server.client() as client:
        for path in PAGES:
            answer = client.get(path, follow_redirects=False)
            assert answer.status_code == 303 and answer.headers["location"].startswith("/login"), path
            assert "Bob Berg" not in answer.text
        for path in FORM_POSTS:
            answer = client.post(
                path, data={"csrf": "x", "group": "busy.both.voicemail"}, follow_redirects=False
            )
            assert answer.status_code == 303 and answer.headers["location"].startswith("/login"), path
    assert "busy.both.voicemail" in _bob_groups(shared_admin_server)


def test_session_cookie_flags(shared_admin_server: AdminServer) -> None:  # noqa: F811
    with shared_admin_server.client() as client:
        answer = login(client, "admin", "admin-demo")
        cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith("vidare_session="))
        flags = [part.strip().lower() for part in cookie.split(";")]
        assert "httponly" in flags and "samesite=lax" in flags
        assert "secure" not in flags  # loopback address: plain HTTP is allowed


def test_secure_cookies_off_loopback() -> None:
    from admin.app import _secure_cookies
    from vidare.config import load_config

    assert _secure_cookies(load_config(None, ["admin.listen=10.1.2.3:8080"])) is True
    assert _secure_cookies(load_config(None, ["admin.listen=127.0.0.1:8080"])) is False


def test_bob_cannot_read_or_change_alices_things(shared_admin_server: AdminServer) -> None:  # noqa: F811
    server = shared_admin_server
    bob, csrf = session_client(server, "bob", "bob-demo")
    with closing(bob):
        headers = {"X-CSRF-Token": csrf}
        for path in (
            "/api/v1/users/alice",
            "/api/v1/users/alice/groups",
            "/api/v1/users/alice/activity",
            "/api/v1/users/alice/cdrs",
            "/api/v1/users/alice/hours",
            "/api/v1/cdrs?user=alice",
            "/api/v1/groups/busy.both.voicemail",
            "/api/v1/audit",
            "/api/v1/departments",
        ):
            assert bob.get(path).status_code == 403, path
        assert [u["username"] for u in bob.get("/api/v1/users").json()] == ["bob"]
        changes = [
            ("PUT", "/api/v1/users/alice/groups", {"groups": ["busy.both.voicemail"]}),
            ("PUT", "/api/v1/users/bob/groups", {"groups": ["busy.both.voicemail"]}),  # the admin's job
            ("PUT", "/api/v1/users/alice/activity", {"kind": "sick"}),
            ("PATCH", "/api/v1/users/alice", {"caller_id_role": "hidden"}),
            ("DELETE", "/api/v1/users/alice", None),
            ("PUT", "/api/v1/company/hours", {"specs": []}),
            ("POST", "/api/v1/tokens", {"name": "mine"}),
        ]
        for method, path, body in changes:
            assert bob.request(method, path, json=body, headers=headers).status_code == 403, path
        # The web pages likewise.
        own = bob.get("/users/bob")
        assert own.status_code == 200 and "Medlemskap i användargrupper" not in own.text
        form_csrf = csrf_of(own.text)
        assert bob.get("/users/alice").status_code == 403
        assert bob.get("/users").status_code == 403
        assert bob.get("/audit").status_code == 403
        refused = bob.post(
            "/users/alice/groups",
            data={"csrf": form_csrf, "group": "busy.both.voicemail"},
            follow_redirects=False,
        )
        assert refused.status_code == 403
        refused = bob.post(
            "/users/alice/activity", data={"csrf": form_csrf, "kind": "sick"}, follow_redirects=False
        )
        assert refused.status_code == 403

    token = bearer_token(server, "bob")
    with server.client(headers={"Authorization": f"Bearer {token}"}) as bob_api:
        assert bob_api.put("/api/v1/users/alice/groups", json={"groups": []}).status_code == 403
        assert bob_api.get("/api/v1/users/alice").status_code == 403

    async def alice(store: Store) -> Any:
        return await store.get_user("alice")

    a = run_store(server.db_url, alice)
    assert a.groups == frozenset(
        {"activity.both.announcement_voicemail", "busy.both.voicemail", "no_answer.both.voicemail.30"}
    )
    assert a.activity.kind == "available" and a.caller_id_role == "fixed"


def test_bob_cannot_read_or_delete_alices_voicemail(shared_admin_server: AdminServer) -> None:  # noqa: F811
    server = shared_admin_server
    msg_id, path = add_voicemail(server, "alice")
    wav = path.read_bytes()
    own_id, own_path = add_voicemail(server, "bob")
    alice_paths = [
        "/api/v1/users/alice/voicemail",
        f"/api/v1/users/alice/voicemail/{msg_id}/audio",
    ]
    bob, csrf = session_client(server, "bob", "bob-demo")
    token = bearer_token(server, "bob")
    with closing(bob), server.client(headers={"Authorization": f"Bearer {token}"}) as bob_api:
        headers = {"X-CSRF-Token": csrf}
        for client, extra in ((bob, headers), (bob_api, {})):
            for path_ in alice_paths:
                answer = client.get(path_)
                assert answer.status_code == 403, path_
                assert answer.content != wav and "sip:" not in answer.text
            refused = client.delete(f"/api/v1/users/alice/voicemail/{msg_id}", headers=extra)
            assert refused.status_code == 403
            refused = client.patch(
                f"/api/v1/users/alice/voicemail/{msg_id}", json={"heard": True}, headers=extra
            )
            assert refused.status_code == 403
            # Alice's message id through bob's own box: not found, not hers.
            assert client.get(f"/api/v1/users/bob/voicemail/{msg_id}/audio").status_code == 404
            assert client.delete(f"/api/v1/users/bob/voicemail/{msg_id}", headers=extra).status_code == 404
            # His own works.
            assert client.get(f"/api/v1/users/bob/voicemail/{own_id}/audio").content == own_path.read_bytes()
        # The web forms likewise.
        form_csrf = csrf_of(bob.get("/users/bob").text)
        for action in ("heard", "delete"):
            answer = bob.post(
                f"/users/alice/voicemail/{msg_id}/{action}", data={"csrf": form_csrf, "heard": "1"}
            )
            assert answer.status_code == 403
            answer = bob.post(
                f"/users/bob/voicemail/{msg_id}/{action}", data={"csrf": form_csrf, "heard": "1"}
            )
            assert answer.status_code == 404
    assert path.read_bytes() == wav
    with server.client() as anon:
        for path_ in alice_paths:
            assert anon.get(path_).status_code == 401
        assert anon.delete(f"/api/v1/users/alice/voicemail/{msg_id}").status_code == 401
    from media.store import VoicemailStore

    store = VoicemailStore(server.db_url)
    try:
        assert [m.heard for m in store.messages("alice") if m.id == msg_id] == [False]
    finally:
        store.close()


def test_form_post_without_csrf_token_is_refused(admin_server: AdminServer) -> None:  # noqa: F811
    client, api_csrf = session_client(admin_server, "admin", "admin-demo")
    with closing(client):
        page = client.get("/users/bob")
        good = csrf_of(page.text)
        data = {"group": ["activity.both.announcement_voicemail", "no_answer.fixed.alt_number.20"]}
        for extra in ({}, {"csrf": "wrong"}):
            answer = client.post("/users/bob/groups", data={**data, **extra}, follow_redirects=False)
            assert answer.status_code == 403
        for path in FORM_POSTS[1:]:
            assert client.post(path, data={"kind": "sick"}, follow_redirects=False).status_code == 403, path
        assert "no_answer.both.voicemail.30" in _bob_groups(admin_server)
        # The API with the session cookie needs X-CSRF-Token too.
        assert client.put("/api/v1/users/bob/groups", json={"groups": []}).status_code == 403
        assert (
            client.put(
                "/api/v1/users/bob/groups", json={"groups": []}, headers={"X-CSRF-Token": "x"}
            ).status_code
            == 403
        )
        # ...and with the token everything works.
        answer = client.post("/users/bob/groups", data={**data, "csrf": good}, follow_redirects=False)
        assert answer.status_code == 303
        assert _bob_groups(admin_server) == frozenset(data["group"])
        ok = client.put("/api/v1/users/bob/groups", json={"groups": []}, headers={"X-CSRF-Token": api_csrf})
        assert ok.status_code == 200
    # The login form has its own (pre-session) CSRF token.
    with admin_server.client() as anon:
        anon.get("/login")
        refused = anon.post(
            "/login", data={"username": "admin", "password": "admin-demo"}, follow_redirects=False
        )
        assert refused.status_code == 403 and "vidare_session" not in refused.headers.get("set-cookie", "")


def test_sixth_wrong_password_within_a_minute_is_refused_unchecked(admin_server: AdminServer) -> None:  # noqa: F811
    with admin_server.client() as client:
        for _ in range(5):
            assert login(client, "bob", "wrong-password").status_code == 401
        # The 6th attempt is refused before the password is looked at: even the right one.
        sixth = login(client, "bob", "bob-demo")
        assert sixth.status_code == 429
        assert "vidare_session" not in sixth.headers.get("set-cookie", "")
        assert login(client, "bob", "bob-demo").status_code == 429
        # Another account from the same address is not locked out.
        assert login(client, "alice", "alice-demo").status_code == 303


def test_rate_limiter_window() -> None:
    from admin.auth import RateLimiter

    now = [0.0]
    limiter = RateLimiter(clock=lambda: now[0])
    for _ in range(5):
        assert not limiter.blocked("bob", "1.2.3.4")
        limiter.failure("bob", "1.2.3.4")
    assert limiter.blocked("bob", "1.2.3.4") and limiter.blocked("BOB", "1.2.3.4")
    assert not limiter.blocked("bob", "5.6.7.8")
    now[0] = 59.9
    assert limiter.blocked("bob", "1.2.3.4")
    now[0] = 60.0
    assert not limiter.blocked("bob", "1.2.3.4")


def test_passwords_are_argon2_hashes(shared_admin_server: AdminServer) -> None:  # noqa: F811
    async def hashes(store: Store) -> list[str]:
        async with store.engine.connect() as conn:
            admin = (await conn.execute(sa.text("SELECT password_hash FROM admin_accounts"))).scalars().all()
            users = (await conn.execute(sa.text("SELECT web_password_hash FROM users"))).scalars().all()
            tokens = (await conn.execute(sa.text("SELECT token_hash FROM api_tokens"))).scalars().all()
        return [*admin, *users, *tokens]

    bearer_token(shared_admin_server)
    values = run_store(shared_admin_server.db_url, hashes)
    assert len(values) >= 5
    for value in values:
        assert "demo" not in value
        assert value.startswith("$argon2id$") or re.fullmatch(r"[0-9a-f]{64}", value)


@pytest.mark.parametrize("username", ["alice", "carol"])
def test_demo_users_log_in_to_their_own_page(shared_admin_server: AdminServer, username: str) -> None:  # noqa: F811
    with shared_admin_server.client() as client:
        answer = login(client, username, f"{username}-demo")
        assert answer.status_code == 303
        page = client.get("/", follow_redirects=True)
        assert page.status_code == 200 and str(page.url).endswith(f"/users/{username}")


def test_demo_web_passwords_are_reported_until_changed(admin_server: AdminServer) -> None:  # noqa: F811
    from admin.app import demo_web_passwords_unchanged

    async def unchanged(store: Store) -> list[str]:
        return await demo_web_passwords_unchanged(store.engine)

    assert run_store(admin_server.db_url, unchanged) == ["admin", "alice", "bob", "carol"]
    bob, _ = session_client(admin_server, "bob", "bob-demo")
    with closing(bob):
        page = bob.get("/users/bob")
        answer = bob.post(
            "/users/bob/settings",
            data={"csrf": csrf_of(page.text), "caller_id_role": "fixed", "web_password": "bob-new-secret"},
            follow_redirects=False,
        )
        assert answer.status_code == 303
    assert run_store(admin_server.db_url, unchanged) == ["admin", "alice", "carol"]
    with admin_server.client() as client:
        assert login(client, "bob", "bob-demo").status_code == 401
        assert login(client, "bob", "bob-new-secret").status_code == 303
