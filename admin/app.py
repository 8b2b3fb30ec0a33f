"""The admin web application: REST API under ``/api/v1`` and the server-rendered pages.

``create_app(store, config)`` builds a FastAPI app on an opened, migrated store; ``vidare serve``
runs it with uvicorn on ``[admin] listen``. The app owns no directory state: every read comes from
the store's snapshot and every write goes through the store, so a change reaches the next call
without a restart.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy.ext.asyncio import AsyncEngine

from admin.audit import AuditLog
from admin.auth import Auth, hash_password
from admin.repository import get_web_password_hash, set_web_password_hash
from admin.service import AdminService
from admin.tables import ensure_tables
from admin.voicemail import FileRemovalError, UnsafePathError, VoicemailAdmin, notifier_from_config
from policy.catalogue import Catalogue, MembershipError, UnknownGroupError
from policy.store.errors import NotFoundError, ValidationError

__all__ = ["AdminContext", "LoginRequired", "context", "create_app"]

log = logging.getLogger("vidare.admin")
HERE = Path(__file__).resolve().parent


class LoginRequired(Exception):
    """A page was asked for without a session: answered with a redirect to the login page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


@dataclass(slots=True)
class AdminContext:
    store: Any
    config: Any
    engine: AsyncEngine
    service: AdminService
    auth: Auth
    audit: AuditLog
    templates: Jinja2Templates
    secure_cookies: bool
    voicemail: VoicemailAdmin


def context(request: Request) -> AdminContext:
    ctx: AdminContext = request.app.state.ctx
    return ctx


def _secure_cookies(config: Any) -> bool:
    try:
        return not bool(config.address("admin", "listen").is_loopback)
    except Exception:  # no admin address configured: be safe
        return True


def _var_dir(config: Any) -> Path:
    var_dir: Path = config.var_dir
    return var_dir


def _demo_enabled(config: Any) -> bool:
    try:
        return bool(config.get("demo", "enabled"))
    except Exception:
        return False


async def bootstrap(ctx: AdminContext) -> None:
    """Create missing admin tables; on a demo setup, the demo admin and the demo users' web passwords."""
    await ensure_tables(ctx.engine)
    if not _demo_enabled(ctx.config):
        return
    from policy.store.demo import DEMO_ADMIN_LOGIN, DEMO_USERS

    if await ctx.auth.ensure_admin(*DEMO_ADMIN_LOGIN):
        log.info("created the demo admin account %r", DEMO_ADMIN_LOGIN[0])
    for demo in DEMO_USERS:
        if await get_web_password_hash(ctx.engine, demo.username) is None:
            await set_web_password_hash(
                ctx.engine, demo.username, hash_password(demo.sip_password), only_if_unset=True
            )


async def demo_web_passwords_unchanged(engine: AsyncEngine) -> list[str]:
    """Web logins still on their published demo password (``admin`` and the demo users).

    For ``vidare serve``'s loopback-only guard (SPEC 7), next to ``Store.demo_passwords_unchanged``.
    """
    from admin.auth import verify_password
    from policy.store.demo import DEMO_ADMIN_LOGIN, DEMO_USERS

    await ensure_tables(engine)
    auth = Auth(engine, lambda username: get_web_password_hash(engine, username))
    out: list[str] = []
    name, password = DEMO_ADMIN_LOGIN
    if verify_password(await auth.admin_hash(name), password):
        out.append(name)
    for demo in DEMO_USERS:
        stored = await get_web_password_hash(engine, demo.username)
        if stored is not None and verify_password(stored, demo.sip_password):
            out.append(demo.username)
    return out


def create_app(store: Any, config: Any, *, catalogue: Catalogue | None = None) -> FastAPI:
    from admin import api, pages

    engine: AsyncEngine = store.engine
    audit = AuditLog(engine)
    ctx = AdminContext(
        store=store,
        config=config,
        engine=engine,
        service=AdminService(store, audit, catalogue),
        auth=Auth(engine, lambda username: get_web_password_hash(engine, username)),
        audit=audit,
        templates=Jinja2Templates(directory=str(HERE / "templates")),
        secure_cookies=_secure_cookies(config),
        voicemail=VoicemailAdmin(engine, _var_dir(config), audit, notifier_from_config(config)),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await bootstrap(ctx)
        yield
        if ctx.voicemail.mwi is not None:
            await ctx.voicemail.mwi.drain(timeout=0.5)

    app = FastAPI(
        title="Vidare admin API",
        version="1.0",
        description=(
            "Users, group membership, working hours, alternative numbers, activity, voicemail, CDRs, explain."
        ),
        openapi_url="/api/v1/openapi.json",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.ctx = ctx

    @app.exception_handler(LoginRequired)
    async def _login_required(request: Request, exc: LoginRequired) -> Response:
        from urllib.parse import quote

        return RedirectResponse(f"/login?next={quote(exc.next_path, safe='/')}", status_code=303)

    @app.exception_handler(NotFoundError)
    async def _not_found(request: Request, exc: NotFoundError) -> Response:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(ValidationError)
    async def _invalid(request: Request, exc: ValidationError) -> Response:
        return JSONResponse(
            {"detail": [{"loc": ["body", exc.field], "msg": exc.message, "type": "value_error"}]},
            status_code=422,
        )

    @app.exception_handler(MembershipError)
    async def _conflict(request: Request, exc: MembershipError) -> Response:
        return JSONResponse(
            {"detail": str(exc), "slot": exc.slot, "groups": list(exc.groups)}, status_code=409
        )

    @app.exception_handler(UnknownGroupError)
    async def _unknown_group(request: Request, exc: UnknownGroupError) -> Response:
        return JSONResponse(
            {"detail": [{"loc": ["body", "groups"], "msg": str(exc), "type": "value_error"}]},
            status_code=422,
        )

    @app.exception_handler(UnsafePathError)
    async def _unsafe_path(request: Request, exc: UnsafePathError) -> Response:
        log.error("voicemail: %s", exc)
        detail = "the message's file is not in the user's voicemail box"
        return JSONResponse({"detail": detail}, status_code=409)

    @app.exception_handler(FileRemovalError)
    async def _file_removal(request: Request, exc: FileRemovalError) -> Response:
        log.error("voicemail: %s", exc)
        return JSONResponse({"detail": str(exc)}, status_code=500)

    app.include_router(api.router, prefix="/api/v1")
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    return app
