"""Errors raised by the directory store, each worded for one line on a terminal or in a web form.

The catalogue's ``MembershipError`` and ``UnknownGroupError`` pass through the store unchanged: they
already name the groups and the slot.
"""

from __future__ import annotations

__all__ = ["NoCompanyError", "NotFoundError", "StoreError", "ValidationError"]


class StoreError(Exception):
    """Base class of the store's own errors."""


class NotFoundError(StoreError, LookupError):
    """The named user, department or other object does not exist."""

    def __init__(self, what: str, name: str) -> None:
        super().__init__(f"unknown {what} {name!r}")
        self.what = what
        self.name = name

    def __str__(self) -> str:
        return str(self.args[0])


class ValidationError(StoreError, ValueError):
    """A value was refused; ``field`` names the field (e.g. ``"mobile"``, ``"hours"``, ``"until"``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message

    def __str__(self) -> str:
        return self.message


class NoCompanyError(StoreError):
    """The database holds no company yet (an empty database with the demo switched off)."""

    def __init__(self) -> None:
        super().__init__("the database holds no company (enable [demo] or create the company first)")
