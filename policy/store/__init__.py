"""The directory store (SQLAlchemy 2 async + Alembic): users, groups, hours, registrations, CDRs."""

from __future__ import annotations

from policy.store.errors import NoCompanyError, NotFoundError, StoreError, ValidationError
from policy.store.store import MIGRATIONS_DIR, Binding, Cdr, CdrFields, HoursLevel, Store, digest_ha1

__all__ = [
    "MIGRATIONS_DIR",
    "Binding",
    "Cdr",
    "CdrFields",
    "HoursLevel",
    "NoCompanyError",
    "NotFoundError",
    "Store",
    "StoreError",
    "ValidationError",
    "digest_ha1",
]
