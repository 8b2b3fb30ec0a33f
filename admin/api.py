"""The REST API under ``/api/v1`` (OpenAPI at ``/api/v1/openapi.json``).

Authentication: ``Authorization: Bearer <token>`` (API tokens, for automation) or the web session
cookie (then every state-changing request must carry ``X-CSRF-Token``). An admin may do everything;
a user sees and changes only their own things (activity, voicemail setting, caller-ID role, web
password, own CDRs). Validation errors answer 422 naming the field (FastAPI's own shape); a group
slot conflict answers 409 naming both groups and the slot; nothing is ever half-applied.

Voicemail: the media server's messages (``admin/voicemail.py``): list, the WAV file, heard/unheard,
delete (file and row); a user only their own box, an admin every box.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from admin.app import AdminContext, context
from admin.auth import SESSION_COOKIE, Principal, csrf_ok, hash_password
from admin.service import HoursView, user_view
from admin.voicemail import VoicemailMessage, message_view
from policy.catalogue import Group
from policy.decide import decide
from policy.model import User
from policy.numbers import InvalidNumberError, normalise
from policy.plan import CallContext
from policy.store.errors import NotFoundError

__all__ = ["authenticate", "router"]

router = APIRouter()
_bearer = HTTPBearer(auto_error=False, description="An API token (see POST /api/v1/tokens)")
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})

UsernameStr = Annotated[str, Path(min_length=1, max_length=64)]
ActivityName = Literal["available", "meeting", "lunch", "away", "gone", "vacation", "sick", "trip"]
RoleName = Literal["fixed", "mobile", "alt_number", "hidden", "time_based"]

# ----------------------------------------------------------------------------------- models


class ErrorOut(BaseModel):
    detail: str


class ConflictOut(BaseModel):
    detail: str
    slot: str
    groups: list[str]


class ActivityOut(BaseModel):
    kind: str
    until: datetime | None = None


class UserOut(BaseModel):
    username: str
    display_name: str
    extension: str
    fixed: str | None
    mobile: str | None
    department: str | None
    groups: list[str]
    activity: ActivityOut
    caller_id_role: str
    alt_number: str | None
    play_activity_message: bool
    language: str | None


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")
    display_name: str = Field(min_length=1, max_length=200)
    extension: str = Field(pattern=r"^[0-9]{2,8}$")
    sip_password: str = Field(min_length=8, max_length=200)
    fixed: str | None = Field(default=None, max_length=32)
    mobile: str | None = Field(default=None, max_length=32)
    department: str | None = Field(default=None, max_length=100)
    groups: list[str] | None = Field(default=None, description="omitted: the catalogue's default groups")
    web_password: str | None = Field(default=None, min_length=8, max_length=200)


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    display_name: str | None = Field(default=None, min_length=1, max_length=200)
    extension: str | None = Field(default=None, pattern=r"^[0-9]{2,8}$")
    fixed: str | None = Field(default=None, max_length=32)
    mobile: str | None = Field(default=None, max_length=32)
    department: str | None = Field(default=None, max_length=100)
    alt_number: str | None = Field(default=None, max_length=32)
    caller_id_role: RoleName | None = None
    play_activity_message: bool | None = None
    language: Literal["sv", "en"] | None = None
    sip_password: str | None = Field(default=None, min_length=8, max_length=200)
    web_password: str | None = Field(default=None, min_length=8, max_length=200)


_SELF_FIELDS = frozenset({"caller_id_role", "play_activity_message", "language", "web_password"})
_NOT_NULL = frozenset(
    {"display_name", "extension", "caller_id_role", "play_activity_message", "sip_password"}
)


class GroupOut(BaseModel):
    id: str
    name: str
    name_en: str
    situation: str
    number: str
    action: str
    seconds: int | None
    default: bool
    description: str
    slots: list[str]


class GroupDetail(GroupOut):
    members: list[str]


class MembershipIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    groups: list[str] = Field(max_length=200)


class MembershipOut(BaseModel):
    username: str
    groups: list[str]


class ActivityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: ActivityName
    until: datetime | None = Field(
        default=None, description="return time; without a zone it is the company's local time"
    )


class HoursIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    specs: list[str] = Field(
        max_length=50, description='e.g. ["mon-fri 08:00-12:00,13:00-17:00", "sat 10:00-14:00"]'
    )
    closed_dates: list[date] = Field(default_factory=list, max_length=400)


class HoursOut(BaseModel):
    level: str
    owner: str
    configured: bool
    specs: list[str]
    days: list[list[str]]
    closed_dates: list[date]


class AltNumberIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    number: str | None = Field(max_length=32)


class AltNumberOut(BaseModel):
    level: str
    owner: str
    number: str | None


class DepartmentOut(BaseModel):
    name: str
    alt_number: str | None
    hours_configured: bool
    members: list[str]


class CdrOut(BaseModel):
    id: int | None
    call_id: str
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    direction: str
    caller: str
    callee: str
    user: str | None
    outcome: str
    cause: str | None
    decided_by: str | None
    duration: float | None


_NUMBER = r"^\+?[0-9][0-9 ()-]{1,30}$"


class ExplainIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    to: str = Field(pattern=_NUMBER, description="the dialled number or extension")
    from_: str | None = Field(default=None, alias="from", pattern=_NUMBER)
    at: datetime | None = None
    busy: bool = False


class StepOut(BaseModel):
    rule: str
    verdict: str
    reason: str


class ExplainOut(BaseModel):
    plan: dict[str, Any]
    steps: list[StepOut]


class AuditOut(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    before: Any = None
    after: Any = None


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    username: str | None = Field(default=None, max_length=64, description="a user's token; omitted: admin")


class TokenOut(BaseModel):
    id: int
    name: str
    kind: str
    username: str
    created_at: datetime


class TokenCreated(BaseModel):
    id: int
    name: str
    token: str


class VoicemailOut(BaseModel):
    id: int
    caller: str = Field(description="the caller's From URI")
    received_at: datetime
    duration: float = Field(description="seconds")
    cause: str | None = Field(description="why the call reached voicemail: 486, 408 or 302")
    heard: bool


class VoicemailPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    heard: bool


class MeOut(BaseModel):
    kind: str
    username: str
    csrf: str | None = Field(
        default=None, description="with a session cookie: the token to send as X-CSRF-Token"
    )


# ----------------------------------------------------------------------------------- auth

_E401: dict[int | str, dict[str, Any]] = {401: {"model": ErrorOut}, 403: {"model": ErrorOut}}
_E404 = {**_E401, 404: {"model": ErrorOut}}


async def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    ctx = context(request)
    if credentials is not None:
        principal = await ctx.auth.token(credentials.credentials)
        if principal is None:
            raise HTTPException(401, "invalid API token", headers={"WWW-Authenticate": "Bearer"})
        return principal
    if request.headers.get("authorization"):
        raise HTTPException(401, "unsupported authorization scheme", headers={"WWW-Authenticate": "Bearer"})
    principal = await ctx.auth.session(request.cookies.get(SESSION_COOKIE))
    if principal is None:
        raise HTTPException(401, "login required", headers={"WWW-Authenticate": "Bearer"})
    if request.method not in _SAFE and not csrf_ok(principal.csrf, request.headers.get("x-csrf-token")):
        raise HTTPException(403, "missing or wrong X-CSRF-Token")
    return principal


Auth = Annotated[Principal, Depends(authenticate)]
Ctx = Annotated[AdminContext, Depends(context)]


def _admin(p: Principal) -> None:
    if not p.is_admin:
        raise HTTPException(403, "administrators only")


def _self_or_admin(p: Principal, username: str) -> None:
    if not p.may_act_for(username):
        raise HTTPException(403, "you may see and change only your own things")


def _field_error(field: str, message: str) -> HTTPException:
    return HTTPException(422, [{"loc": ["body", field], "msg": message, "type": "value_error"}])


async def _aware(ctx: AdminContext, value: datetime | None, field: str) -> datetime | None:
    """A naive time is the company's local time; the result is UTC-aware."""
    if value is None:
        return None
    try:
        if value.tzinfo is None or value.utcoffset() is None:
            value = value.replace(tzinfo=await ctx.service.company_zone())
        return value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise HTTPException(
            422, [{"loc": ["query", field], "msg": "time out of range", "type": "value_error"}]
        ) from None


def _user_out(u: User) -> UserOut:
    return UserOut.model_validate(user_view(u))


def _group_out(g: Group) -> dict[str, Any]:
    return {
        "id": g.id,
        "name": g.name,
        "name_en": g.name_en,
        "situation": g.situation,
        "number": g.number,
        "action": g.action,
        "seconds": g.seconds,
        "default": g.default,
        "description": g.description,
        "slots": list(g.slots),
    }


def _hours_out(h: HoursView) -> HoursOut:
    return HoursOut(
        level=h.level,
        owner=h.owner,
        configured=h.configured,
        specs=list(h.specs),
        days=[list(d) for d in h.days],
        closed_dates=list(h.closed_dates),
    )


# ----------------------------------------------------------------------------------- me, users


@router.get("/me", response_model=MeOut, responses=_E401, tags=["auth"])
async def me(p: Auth) -> MeOut:
    return MeOut(kind=p.kind, username=p.username, csrf=p.csrf or None)


@router.get("/users", response_model=list[UserOut], responses=_E401, tags=["users"])
async def list_users(p: Auth, ctx: Ctx) -> list[UserOut]:
    users = await ctx.service.users()
    return [_user_out(u) for u in users if p.may_act_for(u.username)]


@router.post(
    "/users",
    response_model=UserOut,
    status_code=201,
    responses={**_E401, 409: {"model": ConflictOut}},
    tags=["users"],
)
async def create_user(body: UserCreate, p: Auth, ctx: Ctx) -> UserOut:
    _admin(p)
    fields = body.model_dump(exclude={"web_password"})
    if fields["department"] is not None:
        try:
            await ctx.service.require_department(fields["department"])
        except NotFoundError as e:
            raise _field_error("department", str(e)) from None
    user = await ctx.service.create_user(p.actor, fields)
    if body.web_password is not None:
        await ctx.store.update_user(user.username, web_password_hash=hash_password(body.web_password))
    return _user_out(user)


@router.get("/users/{username}", response_model=UserOut, responses=_E404, tags=["users"])
async def get_user(username: UsernameStr, p: Auth, ctx: Ctx) -> UserOut:
    _self_or_admin(p, username)
    return _user_out(await ctx.service.user(username))


@router.patch("/users/{username}", response_model=UserOut, responses=_E404, tags=["users"])
async def update_user(username: UsernameStr, body: UserUpdate, p: Auth, ctx: Ctx) -> UserOut:
    _self_or_admin(p, username)
    fields = body.model_dump(exclude_unset=True)
    if not p.is_admin:
        refused = sorted(set(fields) - _SELF_FIELDS)
        if refused:
            raise HTTPException(403, f"only an administrator may change {', '.join(refused)}")
    for name in sorted(_NOT_NULL & fields.keys()):
        if fields[name] is None:
            raise _field_error(name, f"{name} may not be null")
    await ctx.service.user(username)  # 404 before anything else
    if fields.get("department") is not None:
        try:
            await ctx.service.require_department(fields["department"])
        except NotFoundError as e:
            raise _field_error("department", str(e)) from None
    web_password = fields.pop("web_password", None)
    if web_password is not None:
        fields["web_password_hash"] = hash_password(web_password)
    return _user_out(await ctx.service.update_user(p.actor, username, fields))


@router.delete("/users/{username}", status_code=204, responses=_E404, tags=["users"])
async def delete_user(username: UsernameStr, p: Auth, ctx: Ctx) -> Response:
    _admin(p)
    await ctx.service.delete_user(p.actor, username)
    return Response(status_code=204)


# ----------------------------------------------------------------------------------- groups


@router.get("/groups", response_model=list[GroupOut], responses=_E401, tags=["groups"])
async def list_groups(p: Auth, ctx: Ctx) -> list[dict[str, Any]]:
    catalogue = await ctx.service.catalogue()
    return [_group_out(g) for g in catalogue.groups.values()]


@router.get("/groups/{group_id}", response_model=GroupDetail, responses=_E404, tags=["groups"])
async def get_group(group_id: Annotated[str, Path(max_length=100)], p: Auth, ctx: Ctx) -> dict[str, Any]:
    _admin(p)
    catalogue = await ctx.service.catalogue()
    group = catalogue.groups.get(group_id)
    if group is None:
        raise HTTPException(404, f"unknown group {group_id!r}")
    return {**_group_out(group), "members": await ctx.service.members(group_id)}


@router.get("/users/{username}/groups", response_model=MembershipOut, responses=_E404, tags=["groups"])
async def get_membership(username: UsernameStr, p: Auth, ctx: Ctx) -> MembershipOut:
    _self_or_admin(p, username)
    user = await ctx.service.user(username)
    return MembershipOut(username=username, groups=sorted(user.groups))


@router.put(
    "/users/{username}/groups",
    response_model=MembershipOut,
    responses={**_E404, 409: {"model": ConflictOut}},
    tags=["groups"],
)
async def replace_membership(username: UsernameStr, body: MembershipIn, p: Auth, ctx: Ctx) -> MembershipOut:
    """Replace the user's groups atomically; two groups in one slot answer 409 and change nothing."""
    _admin(p)
    user = await ctx.service.replace_groups(p.actor, username, body.groups)
    return MembershipOut(username=username, groups=sorted(user.groups))


# ----------------------------------------------------------------------------------- activity


@router.get("/users/{username}/activity", response_model=ActivityOut, responses=_E404, tags=["activity"])
async def get_activity(username: UsernameStr, p: Auth, ctx: Ctx) -> ActivityOut:
    _self_or_admin(p, username)
    user = await ctx.service.user(username)
    return ActivityOut.model_validate(user_view(user)["activity"])


@router.put("/users/{username}/activity", response_model=ActivityOut, responses=_E404, tags=["activity"])
async def set_activity(username: UsernameStr, body: ActivityIn, p: Auth, ctx: Ctx) -> ActivityOut:
    _self_or_admin(p, username)
    await ctx.service.user(username)
    until = await _aware(ctx, body.until, "until")
    user = await ctx.service.set_activity(p.actor, username, body.kind, until)
    return ActivityOut.model_validate(user_view(user)["activity"])


# ----------------------------------------------------------------------------------- hours, alt numbers


async def _get_hours(ctx: AdminContext, level: str, owner: str) -> HoursOut:
    return _hours_out(await ctx.service.hours(level, owner))


async def _put_hours(ctx: AdminContext, p: Principal, level: str, owner: str, body: HoursIn) -> HoursOut:
    _admin(p)
    await ctx.service.hours(level, owner)  # 404 for an unknown owner
    view = await ctx.service.set_hours(p.actor, level, owner, body.specs, body.closed_dates)
    return _hours_out(view)


@router.get("/company/hours", response_model=HoursOut, responses=_E401, tags=["working hours"])
async def get_company_hours(p: Auth, ctx: Ctx) -> HoursOut:
    return await _get_hours(ctx, "company", "")


@router.put("/company/hours", response_model=HoursOut, responses=_E401, tags=["working hours"])
async def put_company_hours(body: HoursIn, p: Auth, ctx: Ctx) -> HoursOut:
    return await _put_hours(ctx, p, "company", "", body)


@router.get("/departments", response_model=list[DepartmentOut], responses=_E401, tags=["departments"])
async def list_departments(p: Auth, ctx: Ctx) -> list[DepartmentOut]:
    _admin(p)
    snap = await ctx.service.snapshot()
    return [
        DepartmentOut(
            name=d.name,
            alt_number=d.alt_number,
            hours_configured=d.hours is not None,
            members=sorted(u.username for u in snap.users.values() if u.department == d.name),
        )
        for d in sorted(snap.departments.values(), key=lambda d: d.name)
    ]


@router.get("/departments/{name}/hours", response_model=HoursOut, responses=_E404, tags=["working hours"])
async def get_department_hours(name: Annotated[str, Path(max_length=100)], p: Auth, ctx: Ctx) -> HoursOut:
    _admin(p)
    return await _get_hours(ctx, "department", name)


@router.put("/departments/{name}/hours", response_model=HoursOut, responses=_E404, tags=["working hours"])
async def put_department_hours(
    name: Annotated[str, Path(max_length=100)], body: HoursIn, p: Auth, ctx: Ctx
) -> HoursOut:
    return await _put_hours(ctx, p, "department", name, body)


@router.get("/users/{username}/hours", response_model=HoursOut, responses=_E404, tags=["working hours"])
async def get_user_hours(username: UsernameStr, p: Auth, ctx: Ctx) -> HoursOut:
    _self_or_admin(p, username)
    return await _get_hours(ctx, "user", username)


@router.put("/users/{username}/hours", response_model=HoursOut, responses=_E404, tags=["working hours"])
async def put_user_hours(username: UsernameStr, body: HoursIn, p: Auth, ctx: Ctx) -> HoursOut:
    return await _put_hours(ctx, p, "user", username, body)


async def _put_alt(
    ctx: AdminContext, p: Principal, level: str, owner: str, body: AltNumberIn
) -> AltNumberOut:
    _admin(p)
    await ctx.service.alt_number(level, owner)  # 404 for an unknown owner
    number = await ctx.service.set_alt_number(p.actor, level, owner, body.number)
    return AltNumberOut(level=level, owner=owner, number=number)


@router.get("/company/alt-number", response_model=AltNumberOut, responses=_E401, tags=["alternative numbers"])
async def get_company_alt(p: Auth, ctx: Ctx) -> AltNumberOut:
    return AltNumberOut(level="company", owner="", number=await ctx.service.alt_number("company", ""))


@router.put("/company/alt-number", response_model=AltNumberOut, responses=_E401, tags=["alternative numbers"])
async def put_company_alt(body: AltNumberIn, p: Auth, ctx: Ctx) -> AltNumberOut:
    return await _put_alt(ctx, p, "company", "", body)


@router.get(
    "/departments/{name}/alt-number",
    response_model=AltNumberOut,
    responses=_E404,
    tags=["alternative numbers"],
)
async def get_department_alt(name: Annotated[str, Path(max_length=100)], p: Auth, ctx: Ctx) -> AltNumberOut:
    _admin(p)
    number = await ctx.service.alt_number("department", name)
    return AltNumberOut(level="department", owner=name, number=number)


@router.put(
    "/departments/{name}/alt-number",
    response_model=AltNumberOut,
    responses=_E404,
    tags=["alternative numbers"],
)
async def put_department_alt(
    name: Annotated[str, Path(max_length=100)], body: AltNumberIn, p: Auth, ctx: Ctx
) -> AltNumberOut:
    return await _put_alt(ctx, p, "department", name, body)


@router.get(
    "/users/{username}/alt-number", response_model=AltNumberOut, responses=_E404, tags=["alternative numbers"]
)
async def get_user_alt(username: UsernameStr, p: Auth, ctx: Ctx) -> AltNumberOut:
    _self_or_admin(p, username)
    number = await ctx.service.alt_number("user", username)
    return AltNumberOut(level="user", owner=username, number=number)


@router.put(
    "/users/{username}/alt-number", response_model=AltNumberOut, responses=_E404, tags=["alternative numbers"]
)
async def put_user_alt(username: UsernameStr, body: AltNumberIn, p: Auth, ctx: Ctx) -> AltNumberOut:
    return await _put_alt(ctx, p, "user", username, body)


# ----------------------------------------------------------------------------------- CDRs


async def _cdrs(
    ctx: AdminContext, user: str | None, since: datetime | None, until: datetime | None, limit: int
) -> list[CdrOut]:
    rows = await ctx.service.cdrs(
        user, await _aware(ctx, since, "since"), await _aware(ctx, until, "until"), limit
    )
    return [
        CdrOut(
            id=r.id,
            call_id=r.call_id,
            started_at=r.started_at,
            answered_at=r.answered_at,
            ended_at=r.ended_at,
            direction=r.direction,
            caller=r.caller,
            callee=r.callee,
            user=r.user,
            outcome=r.outcome,
            cause=r.cause,
            decided_by=r.decided_by,
            duration=r.duration,
        )
        for r in rows
    ]


Limit = Annotated[int, Query(ge=1, le=1000)]


@router.get("/cdrs", response_model=list[CdrOut], responses=_E401, tags=["cdrs"])
async def list_cdrs(
    p: Auth,
    ctx: Ctx,
    user: Annotated[str | None, Query(max_length=64)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Limit = 100,
) -> list[CdrOut]:
    """Newest first; ``since`` inclusive, ``until`` exclusive. A user sees only their own calls."""
    if not p.is_admin:
        if user is not None and user != p.username:
            raise HTTPException(403, "you may see only your own calls")
        user = p.username
    return await _cdrs(ctx, user, since, until, limit)


@router.get("/users/{username}/cdrs", response_model=list[CdrOut], responses=_E404, tags=["cdrs"])
async def list_user_cdrs(
    username: UsernameStr,
    p: Auth,
    ctx: Ctx,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Limit = 100,
) -> list[CdrOut]:
    _self_or_admin(p, username)
    await ctx.service.user(username)
    return await _cdrs(ctx, username, since, until, limit)


# ----------------------------------------------------------------------------------- voicemail

MessageId = Annotated[int, Path(ge=1, le=2**62, description="the message's id", examples=[1])]
# The example names a box that exists (schemathesis's example phase then reaches real messages).
BoxOwner = Annotated[str, Path(min_length=1, max_length=64, examples=["bob"])]


def _voicemail_out(m: VoicemailMessage) -> VoicemailOut:
    return VoicemailOut.model_validate(message_view(m))


async def _message(ctx: AdminContext, username: str, message_id: int) -> VoicemailMessage:
    msg = await ctx.voicemail.message(username, message_id)
    if msg is None:
        raise HTTPException(404, f"no voicemail message {message_id} for {username}")
    return msg


@router.get(
    "/users/{username}/voicemail", response_model=list[VoicemailOut], responses=_E404, tags=["voicemail"]
)
async def list_voicemail(username: BoxOwner, p: Auth, ctx: Ctx) -> list[VoicemailOut]:
    """The user's voicemail messages: unheard first, newest first within each."""
    _self_or_admin(p, username)
    await ctx.service.user(username)
    return [_voicemail_out(m) for m in await ctx.voicemail.messages(username)]


_WAV = {"audio/wav": {"schema": {"type": "string", "format": "binary"}}}
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def _byte_range(header: str | None, size: int) -> tuple[int, int] | Literal["unsatisfiable"] | None:
    """One ``bytes=a-b`` / ``bytes=a-`` / ``bytes=-n`` range as (first, last); None: send it all."""
    if not header:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None or match.group(0) == "bytes=-":
        return None  # multiple or malformed ranges: the whole file (RFC 9110 allows ignoring Range)
    first_text, last_text = match.groups()
    if first_text:
        first = int(first_text)
        last = min(int(last_text), size - 1) if last_text else size - 1
        if last_text and int(last_text) < first:
            return None
    else:
        first, last = max(size - int(last_text), 0), size - 1
        if int(last_text) == 0:
            return "unsatisfiable"
    if first >= size:
        return "unsatisfiable"
    return first, last


@router.get(
    "/users/{username}/voicemail/{message_id}/audio",
    response_class=Response,
    responses={
        200: {"content": _WAV, "description": "the recording (WAV)"},
        206: {"content": _WAV, "description": "the requested byte range of the recording"},
        **_E404,
        409: {"model": ErrorOut},
        416: {"description": "the requested range is beyond the end of the file"},
    },
    tags=["voicemail"],
)
async def voicemail_audio(
    username: BoxOwner,
    message_id: MessageId,
    p: Auth,
    ctx: Ctx,
    range_header: Annotated[str | None, Header(alias="range", include_in_schema=False)] = None,
) -> Response:
    """The message's WAV file (single byte ranges supported, for the browser's audio element).

    The file is read whole before the answer starts, so a delete at the same moment can never cut a
    response short.
    """
    _self_or_admin(p, username)
    msg = await _message(ctx, username, message_id)
    path = ctx.voicemail.path(msg)  # 409 when the row names a file outside the box
    try:
        data = await anyio.Path(path).read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise HTTPException(404, f"the file of voicemail message {message_id} is missing") from None
    headers = {
        "Accept-Ranges": "bytes",
        "Cache-Control": "private, no-store",
        "Content-Disposition": f'inline; filename="voicemail-{message_id}.wav"',
    }
    wanted = _byte_range(range_header, len(data))
    if wanted == "unsatisfiable":
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{len(data)}"})
    if wanted is None:
        return Response(data, media_type="audio/wav", headers=headers)
    first, last = wanted
    headers["Content-Range"] = f"bytes {first}-{last}/{len(data)}"
    return Response(data[first : last + 1], status_code=206, media_type="audio/wav", headers=headers)


@router.patch(
    "/users/{username}/voicemail/{message_id}",
    response_model=VoicemailOut,
    responses=_E404,
    tags=["voicemail"],
)
async def update_voicemail(
    username: BoxOwner, message_id: MessageId, body: VoicemailPatch, p: Auth, ctx: Ctx
) -> VoicemailOut:
    """Mark a message heard or unheard (audited; the user's phones get an MWI NOTIFY)."""
    _self_or_admin(p, username)
    msg = await ctx.voicemail.set_heard(p.actor, username, message_id, body.heard)
    if msg is None:
        raise HTTPException(404, f"no voicemail message {message_id} for {username}")
    return _voicemail_out(msg)


@router.delete(
    "/users/{username}/voicemail/{message_id}",
    status_code=204,
    responses={**_E404, 409: {"model": ErrorOut}, 500: {"model": ErrorOut}},
    tags=["voicemail"],
)
async def delete_voicemail(username: BoxOwner, message_id: MessageId, p: Auth, ctx: Ctx) -> Response:
    """Delete the message: its file and its row, or nothing (audited; MWI NOTIFY)."""
    _self_or_admin(p, username)
    if not await ctx.voicemail.delete(p.actor, username, message_id):
        raise HTTPException(404, f"no voicemail message {message_id} for {username}")
    return Response(status_code=204)


# ----------------------------------------------------------------------------------- explain


@router.post("/explain", response_model=ExplainOut, responses=_E401, tags=["explain"])
async def explain(body: ExplainIn, p: Auth, ctx: Ctx) -> ExplainOut:
    """The decision trace for a hypothetical incoming call (nothing is placed)."""
    _admin(p)
    snap = await ctx.service.snapshot()

    def number(value: str, field: str) -> str:
        text = value.strip()
        if text.isdigit() and text in snap.by_extension:
            return text
        try:
            return normalise(text, snap.company.country)
        except InvalidNumberError as e:
            raise _field_error(field, str(e)) from None

    to = number(body.to, "to")
    caller = None if body.from_ is None else number(body.from_, "from")
    at = await _aware(ctx, body.at, "at") or datetime.now(UTC)
    caller_user = None
    if caller is not None:
        hit = snap.by_number.get(caller)
        caller_user = hit[0] if hit else snap.by_extension.get(caller)
    call = CallContext.incoming(to, caller=caller, caller_user=caller_user, user_busy=body.busy)
    try:
        max_ring = int(ctx.config.get("sip", "max_ring_seconds"))
    except Exception:
        max_ring = 120
    plan = decide(call, snap, at, max_ring_seconds=max_ring)
    return ExplainOut(
        plan=plan.to_json(),
        steps=[StepOut(rule=s.rule, verdict=s.verdict, reason=s.reason) for s in plan.explanation],
    )


# ----------------------------------------------------------------------------------- audit, tokens


@router.get("/audit", response_model=list[AuditOut], responses=_E401, tags=["audit"])
async def audit(
    p: Auth,
    ctx: Ctx,
    limit: Limit = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[AuditOut]:
    _admin(p)
    entries = await ctx.audit.entries(limit=limit, offset=offset)
    return [
        AuditOut(
            id=e.id, at=e.at, actor=e.actor, action=e.action, target=e.target, before=e.before, after=e.after
        )
        for e in entries
    ]


@router.get("/tokens", response_model=list[TokenOut], responses=_E401, tags=["auth"])
async def list_tokens(p: Auth, ctx: Ctx) -> list[TokenOut]:
    _admin(p)
    return [TokenOut.model_validate(t) for t in await ctx.auth.list_tokens()]


@router.post("/tokens", response_model=TokenCreated, status_code=201, responses=_E404, tags=["auth"])
async def create_token(body: TokenIn, p: Auth, ctx: Ctx) -> TokenCreated:
    """A new API token; its text is shown only in this answer."""
    _admin(p)
    if body.username is not None:
        await ctx.service.user(body.username)
        token_id, token = await ctx.auth.create_token(body.name, "user", body.username)
    else:
        token_id, token = await ctx.auth.create_token(body.name, "admin", p.username)
    await ctx.audit.record(
        p.actor, "token.create", f"token:{token_id}", None, {"name": body.name, "user": body.username}
    )
    return TokenCreated(id=token_id, name=body.name, token=token)


@router.delete("/tokens/{token_id}", status_code=204, responses=_E404, tags=["auth"])
async def delete_token(token_id: Annotated[int, Path(ge=1, le=2**62)], p: Auth, ctx: Ctx) -> Response:
    _admin(p)
    if not await ctx.auth.delete_token(token_id):
        raise HTTPException(404, f"no token {token_id}")
    await ctx.audit.record(p.actor, "token.delete", f"token:{token_id}", {"id": token_id}, None)
    return Response(status_code=204)
