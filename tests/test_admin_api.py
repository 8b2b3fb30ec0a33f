"""The admin REST API over HTTP against the real app under uvicorn on a real SQLite file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from admin_server import (  # noqa: F401  (fixtures)
    AdminServer,
    admin_server,
    bearer_token,
    run_store,
    session_client,
    shared_admin_server,
)

from policy.store import Cdr, Store

DEFAULTS = ["activity.both.announcement_voicemail", "busy.both.voicemail", "no_answer.both.voicemail.30"]


@pytest.fixture(scope="module")
def api(shared_admin_server: AdminServer) -> httpx.Client:  # noqa: F811
    token = bearer_token(shared_admin_server)
    return shared_admin_server.client(headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def fresh_api(admin_server: AdminServer) -> httpx.Client:  # noqa: F811
    token = bearer_token(admin_server)
    return admin_server.client(headers={"Authorization": f"Bearer {token}"})


def _field_named(answer: httpx.Response, field: str) -> bool:
    detail = answer.json()["detail"]
    return any(field in [str(x) for x in item["loc"]] for item in detail)


def test_openapi_document_is_served(shared_admin_server: AdminServer) -> None:  # noqa: F811
    doc = httpx.get(f"{shared_admin_server.url}/api/v1/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    for path in (
        "/api/v1/users",
        "/api/v1/users/{username}/groups",
        "/api/v1/company/hours",
        "/api/v1/explain",
    ):
        assert path in doc["paths"]


def test_list_and_show_users(api: httpx.Client) -> None:
    users = api.get("/api/v1/users").json()
    assert [u["username"] for u in users] == ["alice", "bob", "carol"]
    bob = api.get("/api/v1/users/bob").json()
    assert bob["fixed"] == "+4681001002" and bob["mobile"] == "+46701001002"
    assert bob["department"] == "Sales" and bob["groups"] == DEFAULTS
    assert api.get("/api/v1/users/nobody").status_code == 404


def test_create_update_delete_user(api: httpx.Client) -> None:
    body = {
        "username": "dave",
        "display_name": "Dave Dahl",
        "extension": "1004",
        "sip_password": "dave-secret-1",
        "fixed": "08-100 10 04",
        "mobile": "070-100 10 04",
        "department": "Support",
    }
    created = api.post("/api/v1/users", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["groups"] == DEFAULTS  # the default groups
    assert created.json()["fixed"] == "+4681001004"  # normalised to E.164

    again = api.post("/api/v1/users", json=body)
    assert again.status_code == 422 and _field_named(again, "username")

    patched = api.patch(
        "/api/v1/users/dave",
        json={
            "mobile": "+46701001005",
            "department": "Sales",
            "caller_id_role": "time_based",
            "play_activity_message": True,
        },
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["mobile"] == "+46701001005"
    assert patched.json()["department"] == "Sales"
    assert patched.json()["caller_id_role"] == "time_based"
    assert patched.json()["play_activity_message"] is True

    # Validation names the field, and nothing is half-applied.
    bad = api.patch("/api/v1/users/dave", json={"display_name": "Dave D", "mobile": "not a number"})
    assert bad.status_code == 422 and _field_named(bad, "mobile")
    assert api.get("/api/v1/users/dave").json()["display_name"] == "Dave Dahl"
    bad = api.patch("/api/v1/users/dave", json={"department": "Nowhere"})
    assert bad.status_code == 422 and _field_named(bad, "department")
    bad = api.patch("/api/v1/users/dave", json={"caller_id_role": "loud"})
    assert bad.status_code == 422 and _field_named(bad, "caller_id_role")
    taken = api.patch("/api/v1/users/dave", json={"fixed": "+4681001001"})
    assert taken.status_code == 422 and _field_named(taken, "fixed")

    assert api.delete("/api/v1/users/dave").status_code == 204
    assert api.get("/api/v1/users/dave").status_code == 404
    assert api.delete("/api/v1/users/dave").status_code == 404


def test_group_catalogue_and_members(api: httpx.Client) -> None:
    groups = api.get("/api/v1/groups").json()
    ids = [g["id"] for g in groups]
    assert "no_answer.fixed.alt_number.20" in ids and len(ids) == len(set(ids))
    g = next(g for g in groups if g["id"] == "no_answer.fixed.alt_number.20")
    assert g["name"] == "20 sek Fastnr -> Alt.nr" and g["seconds"] == 20 and g["slots"] == ["no_answer.fixed"]
    detail = api.get("/api/v1/groups/busy.both.voicemail").json()
    assert {"alice", "bob", "carol"} <= set(detail["members"])
    assert api.get("/api/v1/groups/no.such.group").status_code == 404


def test_membership_replace_and_conflict(fresh_api: httpx.Client, admin_server: AdminServer) -> None:  # noqa: F811
    version_before = run_store(admin_server.db_url, Store.version)
    wanted = ["activity.both.announcement_voicemail", "busy.both.voicemail", "no_answer.fixed.alt_number.20"]
    ok = fresh_api.put("/api/v1/users/bob/groups", json={"groups": wanted})
    assert ok.status_code == 200, ok.text
    assert ok.json() == {"username": "bob", "groups": sorted(wanted)}

    # The change is in the directory the call path reads, with a new version (no restart needed).
    async def bob_groups(store: Store) -> tuple[int, frozenset[str]]:
        snap = await store.snapshot()
        return snap.version, snap.users["bob"].groups

    version, groups = run_store(admin_server.db_url, bob_groups)
    assert version > version_before and groups == frozenset(wanted)

    conflict = fresh_api.put(
        "/api/v1/users/bob/groups", json={"groups": [*wanted, "no_answer.both.voicemail.30"]}
    )
    assert conflict.status_code == 409
    body = conflict.json()
    assert body["slot"] == "no_answer.fixed"
    assert sorted(body["groups"]) == ["no_answer.both.voicemail.30", "no_answer.fixed.alt_number.20"]
    assert (
        "no_answer.both.voicemail.30" in body["detail"] and "no_answer.fixed.alt_number.20" in body["detail"]
    )
    assert run_store(admin_server.db_url, bob_groups)[1] == frozenset(wanted)  # nothing changed

    unknown = fresh_api.put("/api/v1/users/bob/groups", json={"groups": ["no.such.group"]})
    assert unknown.status_code == 422 and _field_named(unknown, "groups")
    assert fresh_api.get("/api/v1/users/bob/groups").json()["groups"] == sorted(wanted)


def test_working_hours_at_three_levels(fresh_api: httpx.Client) -> None:
    company = fresh_api.get("/api/v1/company/hours").json()
    assert company["configured"] and company["days"][0] == ["08:00-17:00"]
    put = fresh_api.put(
        "/api/v1/company/hours",
        json={
            "specs": ["mon-thu 08:00-12:00,13:00-17:00", "fri 08:00-15:00"],
            "closed_dates": ["2026-12-24"],
        },
    )
    assert put.status_code == 200, put.text
    assert put.json()["days"][0] == ["08:00-12:00", "13:00-17:00"]
    assert put.json()["days"][4] == ["08:00-15:00"] and put.json()["days"][5] == []
    assert put.json()["closed_dates"] == ["2026-12-24"]

    dep = fresh_api.put("/api/v1/departments/Support/hours", json={"specs": ["mon-fri 07:00-19:00"]})
    assert dep.status_code == 200 and dep.json()["days"][2] == ["07:00-19:00"]
    assert fresh_api.get("/api/v1/departments/Support/hours").json()["configured"]
    assert fresh_api.get("/api/v1/departments/Sales/hours").json()["configured"] is False

    user = fresh_api.put("/api/v1/users/carol/hours", json={"specs": ["sat 10:00-14:00"]})
    assert user.status_code == 200 and user.json()["days"][5] == ["10:00-14:00"]

    bad = fresh_api.put("/api/v1/company/hours", json={"specs": ["mon 17:00-08:00"]})
    assert bad.status_code == 422 and _field_named(bad, "hours")
    assert fresh_api.get("/api/v1/company/hours").json()["days"][0] == ["08:00-12:00", "13:00-17:00"]
    assert fresh_api.put("/api/v1/departments/Nowhere/hours", json={"specs": []}).status_code == 404
    assert [d["name"] for d in fresh_api.get("/api/v1/departments").json()] == ["Sales", "Support"]


def test_alternative_numbers(fresh_api: httpx.Client) -> None:
    assert fresh_api.get("/api/v1/company/alt-number").json()["number"] == "+4681000000"
    put = fresh_api.put("/api/v1/departments/Sales/alt-number", json={"number": "08-100 20 00"})
    assert put.status_code == 200 and put.json()["number"] == "+4681002000"
    put = fresh_api.put("/api/v1/users/bob/alt-number", json={"number": "1003"})  # carol's extension
    assert put.json()["number"] == "1003"
    assert fresh_api.get("/api/v1/users/bob/alt-number").json()["number"] == "1003"
    bad = fresh_api.put("/api/v1/company/alt-number", json={"number": "hello"})
    assert bad.status_code == 422 and _field_named(bad, "alt_number")
    cleared = fresh_api.put("/api/v1/users/bob/alt-number", json={"number": None})
    assert cleared.json()["number"] is None


def test_activity(fresh_api: httpx.Client) -> None:
    until = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    put = fresh_api.put("/api/v1/users/bob/activity", json={"kind": "meeting", "until": until.isoformat()})
    assert put.status_code == 200, put.text
    assert put.json()["kind"] == "meeting"
    assert datetime.fromisoformat(put.json()["until"]) == until
    past = fresh_api.put(
        "/api/v1/users/bob/activity",
        json={"kind": "lunch", "until": (datetime.now(UTC) - timedelta(hours=1)).isoformat()},
    )
    assert past.status_code == 422 and _field_named(past, "until")
    assert fresh_api.get("/api/v1/users/bob/activity").json()["kind"] == "meeting"
    bad = fresh_api.put("/api/v1/users/bob/activity", json={"kind": "dancing"})
    assert bad.status_code == 422 and _field_named(bad, "kind")
    back = fresh_api.put("/api/v1/users/bob/activity", json={"kind": "available"})
    assert back.json() == {"kind": "available", "until": None}


def test_cdrs_with_filters(fresh_api: httpx.Client, admin_server: AdminServer) -> None:  # noqa: F811
    base = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)

    async def add(store: Store) -> None:
        for i, user in enumerate(["alice", "bob", "bob", "carol"]):
            await store.add_cdr(
                Cdr(
                    call_id=f"c{i}",
                    started_at=base + timedelta(hours=i),
                    direction="incoming",
                    caller="+46700000000",
                    callee="+4681001002",
                    outcome="answered",
                    user=user,
                    duration=12.0,
                )
            )

    run_store(admin_server.db_url, add)
    everything = fresh_api.get("/api/v1/cdrs").json()
    assert [c["call_id"] for c in everything] == ["c3", "c2", "c1", "c0"]  # newest first
    bobs = fresh_api.get("/api/v1/cdrs", params={"user": "bob"}).json()
    assert [c["call_id"] for c in bobs] == ["c2", "c1"]
    window = fresh_api.get(
        "/api/v1/cdrs",
        params={
            "since": (base + timedelta(hours=1)).isoformat(),
            "until": (base + timedelta(hours=3)).isoformat(),
        },
    ).json()
    assert [c["call_id"] for c in window] == ["c2", "c1"]
    assert len(fresh_api.get("/api/v1/cdrs", params={"limit": 1}).json()) == 1
    assert fresh_api.get("/api/v1/cdrs", params={"limit": 0}).status_code == 422
    assert [c["call_id"] for c in fresh_api.get("/api/v1/users/bob/cdrs").json()] == ["c2", "c1"]


def test_explain(fresh_api: httpx.Client) -> None:
    fresh_api.put(
        "/api/v1/users/bob/groups",
        json={
            "groups": [
                "activity.both.announcement_voicemail",
                "busy.both.voicemail",
                "no_answer.fixed.alt_number.20",
            ]
        },
    )
    # A Wednesday inside working hours.
    answer = fresh_api.post("/api/v1/explain", json={"to": "+4681001002", "at": "2026-11-25T10:00:00+01:00"})
    assert answer.status_code == 200, answer.text
    plan: dict[str, Any] = answer.json()["plan"]
    assert plan["action"] == "ring" and plan["user"] == "bob"
    assert plan["no_answer"]["action"] == "alt_number" and plan["no_answer"]["seconds"] == 20
    assert answer.json()["steps"]
    busy = fresh_api.post("/api/v1/explain", json={"to": "1002", "busy": True, "from": "+46701001001"})
    assert busy.status_code == 200
    bad = fresh_api.post("/api/v1/explain", json={"to": "not a number"})
    assert bad.status_code == 422 and _field_named(bad, "to")


def test_every_change_is_audited(fresh_api: httpx.Client) -> None:
    fresh_api.put("/api/v1/users/alice/alt-number", json={"number": "+4681009000"})
    fresh_api.put("/api/v1/users/alice/activity", json={"kind": "lunch"})
    entries = fresh_api.get("/api/v1/audit").json()
    actions = [(e["action"], e["target"]) for e in entries]
    assert ("alt_number.set", "user:alice") in actions and ("user.activity", "user:alice") in actions
    alt = next(e for e in entries if e["action"] == "alt_number.set")
    assert alt["before"] is None and alt["after"] == "+4681009000"
    assert alt["actor"].startswith("admin:admin (token")
    activity = next(e for e in entries if e["action"] == "user.activity")
    assert activity["before"]["kind"] == "available" and activity["after"]["kind"] == "lunch"


def test_user_token_acts_for_the_user_only(fresh_api: httpx.Client, admin_server: AdminServer) -> None:  # noqa: F811
    token = bearer_token(admin_server, "bob")
    bob = admin_server.client(headers={"Authorization": f"Bearer {token}"})
    assert [u["username"] for u in bob.get("/api/v1/users").json()] == ["bob"]
    assert (
        bob.patch("/api/v1/users/bob", json={"caller_id_role": "hidden"}).json()["caller_id_role"] == "hidden"
    )
    assert bob.patch("/api/v1/users/bob", json={"mobile": "+46701009999"}).status_code == 403
    assert bob.get("/api/v1/users/alice").status_code == 403
