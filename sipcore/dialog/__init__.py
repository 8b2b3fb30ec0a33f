"""Dialogs (RFC 3261 section 12): identity, state and in-dialog request construction."""

from sipcore.dialog.dialog import Dialog, DialogState
from sipcore.dialog.dialog_id import DialogId
from sipcore.dialog.matcher import DialogMatcher

__all__ = ["Dialog", "DialogId", "DialogMatcher", "DialogState"]
