"""Matching requests and responses to dialogs: a plain lookup table (pjsip ``sip_ua_layer.c``)."""

from __future__ import annotations

from typing import Generic, TypeVar

from sipcore.message import Request, Response

from .dialog_id import DialogId

__all__ = ["DialogMatcher"]

T = TypeVar("T")


class DialogMatcher(Generic[T]):
    """DialogId -> value. Values are whatever the layer above keeps per dialog (a call leg)."""

    __slots__ = ("_table",)

    def __init__(self) -> None:
        self._table: dict[DialogId, T] = {}

    def __len__(self) -> int:
        return len(self._table)

    def add(self, dialog_id: DialogId, value: T) -> None:
        self._table[dialog_id] = value

    def remove(self, dialog_id: DialogId) -> None:
        self._table.pop(dialog_id, None)

    def get(self, dialog_id: DialogId) -> T | None:
        return self._table.get(dialog_id)

    def match_request(self, req: Request) -> T | None:
        """An in-dialog request (it has a To tag) -> its dialog's value, or None (answer 481)."""
        if not req.to.tag:
            return None
        return self._table.get(DialogId.of_incoming_request(req))

    def match_response(self, resp: Response) -> T | None:
        return self._table.get(DialogId.of_response(resp))
