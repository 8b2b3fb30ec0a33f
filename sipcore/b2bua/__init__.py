"""The B2BUA: one sans-IO state machine per call, and the manager that routes to them."""

from sipcore.b2bua.call import Call, CallState
from sipcore.b2bua.config import B2buaConfig
from sipcore.b2bua.manager import CallManager

__all__ = ["B2buaConfig", "Call", "CallManager", "CallState"]
