"""The server-rendered web pages (Jinja2; plain HTML forms, no JavaScript).

The admin's flows follow the guide: Users -> a user -> "Medlemskap i användargrupper" (tick boxes
grouped by situation, Spara, the table of what happens to a call); Tjänster -> Arbetstid ->
"Konfigurera för alla användare" (and per department and user); Användargrupper; the audit log.
A user logging in with their own password gets their own page: activity with return time,
voicemail setting, caller-ID role, voicemail messages (an ``<audio>`` player each, heard/unheard,
delete) and call history. Every form carries the session's CSRF token.
"""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from admin.app import AdminContext, LoginRequired, context
from admin.auth import PRE_COOKIE, SESSION_COOKIE, Principal, csrf_ok, hash_password
from admin.i18n import LANGUAGES, pick_language, situation_text, translator
from policy.catalogue import MembershipError, UnknownGroupError
from policy.hours import DAYS
from policy.model import ActivityKind, CallerIdRole, User
from policy.store.errors import NotFoundError, ValidationError

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
Ctx = Annotated[AdminContext, Depends(context)]
ROLES = [r.value for r in CallerIdRole]
ACTIVITIES = [a.value for a in ActivityKind]
SITUATIONS = ("activity", "off_hours", "busy", "no_answer")


async def page_principal(request: Request) -> Principal:
    ctx = context(request)
    principal = await ctx.auth.session(request.cookies.get(SESSION_COOKIE))
    if principal is None:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(path)
    return principal


Who = Annotated[Principal, Depends(page_principal)]


def _lang(request: Request) -> str:
    return pick_language(request.cookies.get("lang"), request.headers.get("accept-language"))


def render(
    request: Request,
    ctx: AdminContext,
    name: str,
    principal: Principal | None,
    status: int = 200,
    **values: Any,
) -> HTMLResponse:
    lang = _lang(request)
    values.update(
        request=request,
        t=translator(lang),
        lang=lang,
        languages=LANGUAGES,
        me=principal,
        csrf=principal.csrf if principal else "",
        here=request.url.path,
    )
    response = ctx.templates.TemplateResponse(request, name, values, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = "default-src 'self'; frame-ancestors 'none'"
    return response


def _forbidden(
    request: Request, ctx: AdminContext, p: Principal | None, key: str = "forbidden"
) -> HTMLResponse:
    return render(request, ctx, "error.html", p, status=403, message=translator(_lang(request))(key))


def _not_found(request: Request, ctx: AdminContext, p: Principal) -> HTMLResponse:
    return render(request, ctx, "error.html", p, status=404, message=translator(_lang(request))("not_found"))


async def _form(request: Request, p: Principal) -> FormData | None:
    """The posted form, or None when its CSRF token is missing or wrong."""
    form = await request.form()
    token = form.get("csrf")
    if not csrf_ok(p.csrf, token if isinstance(token, str) else None):
        return None
    return form


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


# ----------------------------------------------------------------------------------- login


def _safe_next(value: str | None) -> str:
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


@router.get("/login")
async def login_page(request: Request, ctx: Ctx, next: str = "/") -> Response:
    pre = request.cookies.get(PRE_COOKIE) or secrets.token_urlsafe(24)
    response = render(request, ctx, "login.html", None, pre=pre, next=_safe_next(next), error=None)
    _set_cookie(response, ctx, PRE_COOKIE, pre)
    return response


def _set_cookie(response: Response, ctx: AdminContext, name: str, value: str) -> None:
    response.set_cookie(
        name, value, httponly=True, samesite="lax", secure=ctx.secure_cookies, path="/", max_age=12 * 3600
    )


@router.post("/login")
async def login(request: Request, ctx: Ctx) -> Response:
    form = await request.form()
    username = _text(form, "username")
    password = form.get("password")
    password = password if isinstance(password, str) else ""
    next_path = _safe_next(_text(form, "next"))
    pre = request.cookies.get(PRE_COOKIE) or secrets.token_urlsafe(24)
    t = translator(_lang(request))

    def again(status: int, key: str) -> Response:
        response = render(
            request, ctx, "login.html", None, status=status, pre=pre, next=next_path, error=t(key)
        )
        _set_cookie(response, ctx, PRE_COOKIE, pre)
        return response

    token = form.get("csrf")
    if not csrf_ok(request.cookies.get(PRE_COOKIE, ""), token if isinstance(token, str) else None):
        return again(403, "csrf")
    client = request.client.host if request.client else "?"
    limiter = ctx.auth.limiter
    if limiter.blocked(username, client):
        return again(429, "rate_limited")  # refused without looking at the password
    kind = await ctx.auth.check_login(username, password)
    if kind is None:
        limiter.failure(username, client)
        return again(401, "bad_login")
    limiter.success(username, client)
    session, _csrf = await ctx.auth.create_session(kind, username)
    if next_path == "/" or (kind == "user" and not next_path.startswith(f"/users/{username}")):
        next_path = "/"
    response = _redirect(next_path)
    _set_cookie(response, ctx, SESSION_COOKIE, session)
    response.delete_cookie(PRE_COOKIE, path="/")
    return response


@router.post("/logout")
async def logout(request: Request, ctx: Ctx, p: Who) -> Response:
    if await _form(request, p) is None:
        return _forbidden(request, ctx, p, "csrf")
    await ctx.auth.end_session(request.cookies.get(SESSION_COOKIE))
    response = _redirect("/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/lang/{code}")
async def switch_language(code: str, next: str = "/") -> Response:
    response = _redirect(_safe_next(next))
    if code in LANGUAGES:
        response.set_cookie("lang", code, samesite="lax", path="/", max_age=365 * 86400)
    return response


@router.get("/")
async def home(p: Who) -> Response:
    return _redirect("/users" if p.is_admin else f"/users/{quote(p.username)}")


# ----------------------------------------------------------------------------------- users


@router.get("/users")
async def users_page(request: Request, ctx: Ctx, p: Who) -> Response:
    if not p.is_admin:
        return _forbidden(request, ctx, p)
    return render(request, ctx, "users.html", p, users=await ctx.service.users())


async def _situation_rows(ctx: AdminContext, username: str, lang: str) -> list[dict[str, Any]]:
    """The guide's table: per situation, what happens to a call to the fixed and the mobile number."""
    from policy.explain import situation_table

    snap = await ctx.service.snapshot()
    try:
        max_ring = int(ctx.config.get("sip", "max_ring_seconds"))
    except Exception:
        max_ring = 120
    rows = situation_table(username, snap, datetime.now(UTC), max_ring_seconds=max_ring)
    table: dict[str, dict[str, Any]] = {s: {"situation": s} for s in SITUATIONS}
    for r in rows:
        entry = table.setdefault(str(r.situation), {"situation": str(r.situation)})
        entry[r.number_kind.value] = {
            "summary": situation_text(r, lang),
            "group": r.decided_by,
            "number": r.number,
        }
    return list(table.values())


async def _user_page(
    request: Request,
    ctx: AdminContext,
    p: Principal,
    user: User,
    *,
    status: int = 200,
    ticked: set[str] | None = None,
    group_error: str | None = None,
    conflict_groups: tuple[str, ...] = (),
    errors: dict[str, str] | None = None,
) -> HTMLResponse:
    catalogue = await ctx.service.catalogue()
    zone = await ctx.service.company_zone()
    until_local = user.activity.until.astimezone(zone) if user.activity.until else None
    cdrs = await ctx.service.cdrs(user.username, None, None, 50)
    voicemails = await ctx.voicemail.messages(user.username)
    return render(
        request,
        ctx,
        "user.html",
        p,
        status=status,
        user=user,
        by_situation=catalogue.by_situation(),
        ticked=set(user.groups) if ticked is None else ticked,
        group_error=group_error,
        conflict_groups=conflict_groups,
        rows=await _situation_rows(ctx, user.username, _lang(request)),
        activities=ACTIVITIES,
        roles=ROLES,
        current_activity=user.activity.effective(datetime.now(UTC)).value,
        until_local=until_local,
        cdrs=cdrs,
        voicemails=voicemails,
        zone=zone,
        errors=errors or {},
        saved=request.query_params.get("saved"),
        default_date=(datetime.now(zone) + timedelta(hours=1)).date().isoformat(),
    )


async def _load_user(ctx: AdminContext, username: str) -> User | None:
    try:
        return await ctx.service.user(username)
    except NotFoundError:
        return None


@router.get("/users/{username}")
async def user_page(username: str, request: Request, ctx: Ctx, p: Who) -> Response:
    if not p.may_act_for(username):
        return _forbidden(request, ctx, p)
    user = await _load_user(ctx, username)
    if user is None:
        return _not_found(request, ctx, p)
    return await _user_page(request, ctx, p, user)


@router.post("/users/{username}/groups")
async def save_groups(username: str, request: Request, ctx: Ctx, p: Who) -> Response:
    if not p.is_admin:
        return _forbidden(request, ctx, p)
    form = await _form(request, p)
    if form is None:
        return _forbidden(request, ctx, p, "csrf")
    user = await _load_user(ctx, username)
    if user is None:
        return _not_found(request, ctx, p)
    wanted = {g for g in form.getlist("group") if isinstance(g, str)}
    try:
        await ctx.service.replace_groups(p.actor, username, wanted)
    except MembershipError as e:
        return await _user_page(
            request, ctx, p, user, status=409, ticked=wanted, group_error=str(e), conflict_groups=e.groups
        )
    except UnknownGroupError as e:
        return await _user_page(request, ctx, p, user, status=422, ticked=wanted, group_error=str(e))
    return _redirect(f"/users/{quote(username)}?saved=groups#groups")


def _until(form: FormData, zone: Any) -> datetime | None:
    day_text, time_text = _text(form, "until_date"), _text(form, "until_time")
    if not time_text:
        return None
    try:
        at = time.fromisoformat(time_text)
        day = date.fromisoformat(day_text) if day_text else datetime.now(zone).date()
    except ValueError:
        raise ValidationError("until", f"cannot read the return time {day_text} {time_text}") from None
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


@router.post("/users/{username}/activity")
async def save_activity(username: str, request: Request, ctx: Ctx, p: Who) -> Response:
    if not p.may_act_for(username):
        return _forbidden(request, ctx, p)
    form = await _form(request, p)
    if form is None:
        return _forbidden(request, ctx, p, "csrf")
    user = await _load_user(ctx, username)
    if user is None:
        return _not_found(request, ctx, p)
    try:
        until = _until(form, await ctx.service.company_zone())
        await ctx.service.set_activity(p.actor, username, _text(form, "kind"), until)
    except ValidationError as e:
        return await _user_page(request, ctx, p, user, status=422, errors={"activity": e.message})
    return _redirect(f"/users/{quote(username)}?saved=activity#activity")


@router.post("/users/{username}/settings")
async def save_settings(username: str, request: Request, ctx: Ctx, p: Who) -> Response:
    if not p.may_act_for(username):
        return _forbidden(request, ctx, p)
    form = await _form(request, p)
    if form is None:
        return _forbidden(request, ctx, p, "csrf")
    user = await _load_user(ctx, username)
    if user is None:
        return _not_found(request, ctx, p)
    fields: dict[str, Any] = {
        "play_activity_message": form.get("play_activity_message") == "on",
        "caller_id_role": _text(form, "caller_id_role"),
    }
    new_password = form.get("web_password")
    try:
        if isinstance(new_password, str) and new_password:
            if len(new_password) < 8:
                raise ValidationError("web_password", "the password must be at least 8 characters")
            fields["web_password_hash"] = hash_password(new_password)
        await ctx.service.update_user(p.actor, username, fields)
    except ValidationError as e:
        return await _user_page(request, ctx, p, user, status=422, errors={"settings": e.message})
    return _redirect(f"/users/{quote(username)}?saved=settings#settings")


def _message_id(value: str) -> int | None:
    return int(value) if value.isdigit() and len(value) <= 18 and int(value) >= 1 else None


@router.post("/users/{username}/voicemail/{message_id}/heard")
async def voicemail_heard(username: str, message_id: str, request: Request, ctx: Ctx, p: Who) -> Response:
    if not p.may_act_for(username):
        return _forbidden(request, ctx, p)
    form = await _form(request, p)
    if form is None:
        return _forbidden(request, ctx, p, "csrf")
    msg_id = _message_id(message_id)
    heard = _text(form, "heard") == "1"
    if msg_id is None or await ctx.voicemail.set_heard(p.actor, username, msg_id, heard) is None:
        return _not_found(request, ctx, p)
    return _redirect(f"/users/{quote(username)}?saved=voicemail#voicemail")


@router.post("/users/{username}/voicemail/{message_id}/delete")
async def voicemail_delete(username: str, message_id: str, request: Request, ctx: Ctx, p: Who) -> Response:
    if not p.may_act_for(username):
        return _forbidden(request, ctx, p)
    form = await _form(request, p)
    if form is None:
        return _forbidden(request, ctx, p, "csrf")
    msg_id = _message_id(message_id)
    if msg_id is None or not await ctx.voicemail.delete(p.actor, username, msg_id):
        return _not_found(request, ctx, p)
    return _redirect(f"/users/{quote(username)}?saved=voicemail_deleted#voicemail")


# ----------------------------------------------------------------------------------- groups, audit


@router.get("/groups")
async def groups_page(request: Request, ctx: Ctx, p: Who) -> Response:
    if not p.is_admin:
        return _forbidden(request, ctx, p)
    catalogue = await ctx.service.catalogue()
    users = await ctx.service.users()
    members = {gid: [u for u in users if gid in u.groups] for gid in catalogue.groups}
    return render(request, ctx, "groups.html", p, by_situation=catalogue.by_situation(), members=members)


@router.get("/audit")
async def audit_page(request: Request, ctx: Ctx, p: Who, page: int = 0) -> Response:
    if not p.is_admin:
        return _forbidden(request, ctx, p)
    page = max(0, min(page, 100_000))
    entries = await ctx.audit.entries(limit=100, offset=page * 100)
    zone = await ctx.service.company_zone()
    return render(request, ctx, "audit.html", p, entries=entries, page=page, zone=zone)


# ----------------------------------------------------------------------------------- services


@router.get("/services/hours")
async def hours_index(request: Request, ctx: Ctx, p: Who) -> Response:
    if not p.is_admin:
        return _forbidden(request, ctx, p)
    return render(
        request,
        ctx,
        "hours_index.html",
        p,
        departments=await ctx.service.departments(),
        users=await ctx.service.users(),
        company=await ctx.service.hours("company", ""),
    )


def _level_path(level: str, owner: str) -> str:
    return "company" if level == "company" else f"{level}/{quote(owner, safe='')}"


async def _hours_page(
    request: Request,
    ctx: AdminContext,
    p: Principal,
    level: str,
    owner: str,
    *,
    status: int = 200,
    days: list[str] | None = None,
    closed: str | None = None,
    alt: str | None = None,
    errors: dict[str, str] | None = None,
) -> HTMLResponse:
    view = await ctx.service.hours(level, owner)
    return render(
        request,
        ctx,
        "hours.html",
        p,
        status=status,
        level=level,
        owner=owner,
        path=_level_path(level, owner),
        view=view,
        days=days if days is not None else [", ".join(d) for d in view.days],
        closed=closed if closed is not None else "\n".join(d.isoformat() for d in view.closed_dates),
        alt=alt if alt is not None else (await ctx.service.alt_number(level, owner) or ""),
        errors=errors or {},
        saved=request.query_params.get("saved"),
    )


async def _check_level(ctx: AdminContext, level: str, owner: str) -> bool:
    if level == "company":
        return owner == ""
    if level == "department":
        return owner in await ctx.service.departments()
    if level == "user":
        return await _load_user(ctx, owner) is not None
    return False


@router.get("/services/hours/company")
@router.get("/services/hours/{level}/{owner}")
async def hours_page(request: Request, ctx: Ctx, p: Who, level: str = "company", owner: str = "") -> Response:
    if not p.is_admin:
        return _forbidden(request, ctx, p)
    if not await _check_level(ctx, level, owner):
        return _not_found(request, ctx, p)
    return await _hours_page(request, ctx, p, level, owner)


@router.post("/services/hours/company")
@router.post("/services/hours/{level}/{owner}")
async def save_hours(request: Request, ctx: Ctx, p: Who, level: str = "company", owner: str = "") -> Response:
    if not p.is_admin:
        return _forbidden(request, ctx, p)
    form = await _form(request, p)
    if form is None:
        return _forbidden(request, ctx, p, "csrf")
    if not await _check_level(ctx, level, owner):
        return _not_found(request, ctx, p)
    days = [_text(form, f"day{d}") for d in range(7)]
    closed_text = _text(form, "closed")
    specs = [f"{DAYS[d]} {text}" for d, text in enumerate(days) if text]
    try:
        closed_dates = []
        for line in closed_text.replace(",", "\n").splitlines():
            if line.strip():
                try:
                    closed_dates.append(date.fromisoformat(line.strip()))
                except ValueError:
                    raise ValidationError("closed_dates", f"cannot read the date {line.strip()!r}") from None
        await ctx.service.set_hours(p.actor, level, owner, specs, closed_dates)
    except ValidationError as e:
        return await _hours_page(
            request,
            ctx,
            p,
            level,
            owner,
            status=422,
            days=days,
            closed=closed_text,
            errors={"hours": e.message},
        )
    return _redirect(f"/services/hours/{_level_path(level, owner)}?saved=hours")


@router.post("/services/alt-number/company")
@router.post("/services/alt-number/{level}/{owner}")
async def save_alt_number(
    request: Request, ctx: Ctx, p: Who, level: str = "company", owner: str = ""
) -> Response:
    if not p.is_admin:
        return _forbidden(request, ctx, p)
    form = await _form(request, p)
    if form is None:
        return _forbidden(request, ctx, p, "csrf")
    if not await _check_level(ctx, level, owner):
        return _not_found(request, ctx, p)
    number = _text(form, "alt_number")
    try:
        await ctx.service.set_alt_number(p.actor, level, owner, number or None)
    except ValidationError as e:
        return await _hours_page(
            request, ctx, p, level, owner, status=422, alt=number, errors={"alt": e.message}
        )
    return _redirect(f"/services/hours/{_level_path(level, owner)}?saved=alt")
