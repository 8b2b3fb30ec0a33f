"""Vidare's policy domain: the group catalogue, the directory model, working hours, ``decide``.

Pure: no I/O on the call path. ``decide(call, snapshot, now) -> Plan``.
"""

from policy.catalogue import (
    Catalogue,
    CatalogueError,
    Group,
    MembershipError,
    PolicyError,
    UnknownGroupError,
    load_catalogue,
)
from policy.decide import DEFAULT_MAX_RING_SECONDS, decide
from policy.explain import SituationRow, format_plan, format_situation_table, situation_table
from policy.hours import (
    HoursSpecError,
    effective_schedule,
    format_hours,
    is_working_time,
    parse_hours_spec,
    public_holidays_for,
)
from policy.model import (
    Activity,
    ActivityKind,
    CallerIdRole,
    Company,
    Department,
    DirectorySnapshot,
    Interval,
    NumberKind,
    SipCredentials,
    User,
    WeeklySchedule,
)
from policy.numbers import InvalidNumberError, is_e164, normalise
from policy.plan import CallContext, Outcome, Plan, Presentation, RingSpec, Step

__all__ = [
    "DEFAULT_MAX_RING_SECONDS",
    "Activity",
    "ActivityKind",
    "CallContext",
    "CallerIdRole",
    "Catalogue",
    "CatalogueError",
    "Company",
    "Department",
    "DirectorySnapshot",
    "Group",
    "HoursSpecError",
    "Interval",
    "InvalidNumberError",
    "MembershipError",
    "NumberKind",
    "Outcome",
    "Plan",
    "PolicyError",
    "Presentation",
    "RingSpec",
    "SipCredentials",
    "SituationRow",
    "Step",
    "UnknownGroupError",
    "User",
    "WeeklySchedule",
    "decide",
    "effective_schedule",
    "format_hours",
    "format_plan",
    "format_situation_table",
    "is_e164",
    "is_working_time",
    "load_catalogue",
    "normalise",
    "parse_hours_spec",
    "public_holidays_for",
    "situation_table",
]
