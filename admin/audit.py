"""The audit log: every change made through the web pages or the API (who, when, what, before/after)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from admin.tables import audit_log

__all__ = ["AuditEntry", "AuditLog"]


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    before: Any
    after: Any


def _dump(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)


class AuditLog:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def record(self, actor: str, action: str, target: str, before: Any, after: Any) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                audit_log.insert().values(
                    at=datetime.now(UTC),
                    actor=actor,
                    action=action,
                    target=target,
                    before=_dump(before),
                    after=_dump(after),
                )
            )

    async def entries(self, limit: int = 100, offset: int = 0, target: str | None = None) -> list[AuditEntry]:
        query = sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(limit).offset(offset)
        if target is not None:
            query = query.where(audit_log.c.target == target)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            AuditEntry(
                id=r.id,
                at=r.at if r.at.tzinfo else r.at.replace(tzinfo=UTC),
                actor=r.actor,
                action=r.action,
                target=r.target,
                before=_load(r.before),
                after=_load(r.after),
            )
            for r in rows
        ]
