"""Swedish and English strings of the web pages (the guide's words are the Swedish ones).

The language comes from the ``lang`` cookie (set by the switch in the page header), else from the
browser's ``Accept-Language``, else Swedish.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["LANGUAGES", "STRINGS", "pick_language", "translator"]

LANGUAGES = ("sv", "en")

STRINGS: dict[str, tuple[str, str]] = {
    # key: (sv, en)
    "app": ("Vidare webb", "Vidare web"),
    "login": ("Logga in", "Log in"),
    "logout": ("Logga ut", "Log out"),
    "username": ("Användarnamn", "Username"),
    "password": ("Lösenord", "Password"),
    "new_password": ("Nytt lösenord för webben", "New web password"),
    "bad_login": ("Fel användarnamn eller lösenord.", "Wrong username or password."),
    "rate_limited": (
        "För många felaktiga inloggningsförsök. Försök igen om en minut.",
        "Too many failed login attempts. Try again in a minute.",
    ),
    "csrf": (
        "Formuläret har gått ut. Ladda om sidan och försök igen.",
        "The form expired. Reload and retry.",
    ),
    "forbidden": ("Du har inte behörighet till den här sidan.", "You may not open this page."),
    "not_found": ("Finns inte.", "Not found."),
    "user_admin": ("Användaradministration", "User administration"),
    "users": ("Användare", "Users"),
    "user": ("Användare", "User"),
    "name": ("Namn", "Name"),
    "extension": ("Anknytning", "Extension"),
    "fixed": ("Fastnr", "Fixed number"),
    "mobile": ("Mobilnr", "Mobile number"),
    "department": ("Avdelning", "Department"),
    "departments": ("Avdelningar", "Departments"),
    "company": ("Företaget", "Company"),
    "group_membership": ("Medlemskap i användargrupper", "Group membership"),
    "user_groups": ("Användargrupper", "User groups"),
    "members": ("Medlemmar", "Members"),
    "no_members": ("Inga medlemmar", "No members"),
    "save": ("Spara", "Save"),
    "saved": ("Sparat.", "Saved."),
    "conflict": ("Kan inte spara", "Cannot save"),
    "situation.activity": ("Aktivitet (hänvisning)", "Activity"),
    "situation.off_hours": ("Tidsstyrd vidarekoppling (utanför arbetstid)", "Off hours"),
    "situation.busy": ("Upptaget", "Busy"),
    "situation.no_answer": ("Ej svar", "No answer"),
    "situation.caller_id": ("Nummerpresentation", "Caller ID"),
    "what_happens": ("Vad händer med ett samtal", "What happens to a call"),
    "situation": ("Situation", "Situation"),
    "call_to_fixed": ("Samtal till Fastnr", "Call to the fixed number"),
    "call_to_mobile": ("Samtal till Mobilnr", "Call to the mobile number"),
    "services": ("Tjänster", "Services"),
    "working_hours": ("Arbetstid", "Working hours"),
    "configure_all": ("Konfigurera för alla användare", "Configure for all users"),
    "configure_department": ("Konfigurera för en avdelning", "Configure for a department"),
    "configure_user": ("Konfigurera för en användare", "Configure for one user"),
    "hours_for": ("Arbetstid för", "Working hours for"),
    "hours_help": (
        "Ange tider som 08:00-12:00, 13:00-17:00. Tomt = stängt.",
        "Enter times like 08:00-12:00, 13:00-17:00. Empty = closed.",
    ),
    "closed_days": ("Stängda dagar", "Closed days"),
    "closed_help": ("Datum (ÅÅÅÅ-MM-DD), ett per rad.", "Dates (YYYY-MM-DD), one per line."),
    "inherited": ("Ärver arbetstid från nivån ovanför.", "Inherits the working hours of the level above."),
    "day.0": ("Måndag", "Monday"),
    "day.1": ("Tisdag", "Tuesday"),
    "day.2": ("Onsdag", "Wednesday"),
    "day.3": ("Torsdag", "Thursday"),
    "day.4": ("Fredag", "Friday"),
    "day.5": ("Lördag", "Saturday"),
    "day.6": ("Söndag", "Sunday"),
    "alt_number": ("Alternativt nummer", "Alternative number"),
    "alt_help": ("Tomt = ärv från nivån ovanför.", "Empty = inherit from the level above."),
    "my_page": ("Mina inställningar", "My settings"),
    "activity": ("Aktivitet", "Activity"),
    "until": ("Åter", "Until"),
    "until_date": ("Datum", "Date"),
    "until_time": ("Tid", "Time"),
    "activity.available": ("Tillgänglig", "Available"),
    "activity.meeting": ("Möte", "Meeting"),
    "activity.lunch": ("Lunch", "Lunch"),
    "activity.away": ("Borta", "Away"),
    "activity.gone": ("Gått för dagen", "Gone for the day"),
    "activity.vacation": ("Semester", "Vacation"),
    "activity.sick": ("Sjuk", "Sick"),
    "activity.trip": ("Tjänsteresa", "Business trip"),
    "current_activity": ("Nuvarande aktivitet", "Current activity"),
    "voicemail_settings": ("Inställningar för röstmeddelanden", "Voicemail settings"),
    "play_activity_message": ("Spela upp meddelande om aktivitet", "Play activity message"),
    "caller_id_role": ("Nummerpresentation (roll)", "Caller-ID role"),
    "role.fixed": ("Fast nummer", "Fixed number"),
    "role.mobile": ("Mobilt nummer", "Mobile number"),
    "role.alt_number": ("Alternativt nummer", "Alternative number"),
    "role.hidden": ("Dolt nummer", "Hidden number"),
    "role.time_based": ("Tidsstyrd nummerpresentation", "Time-based caller ID"),
    "call_history": ("Samtalshistorik", "Call history"),
    "no_calls": ("Inga samtal.", "No calls."),
    "started": ("Start", "Started"),
    "direction": ("Riktning", "Direction"),
    "caller": ("Från", "From"),
    "callee": ("Till", "To"),
    "outcome": ("Utfall", "Outcome"),
    "duration": ("Längd", "Duration"),
    "audit_log": ("Granskningslogg", "Audit log"),
    "when": ("När", "When"),
    "who": ("Vem", "Who"),
    "what": ("Vad", "What"),
    "target": ("Objekt", "Target"),
    "before": ("Före", "Before"),
    "after": ("Efter", "After"),
    "language": ("Språk", "Language"),
    "settings_for": ("Inställningar för", "Settings for"),
    "open": ("Öppna", "Open"),
    "voicemail": ("Röstmeddelanden", "Voicemail"),
    "no_voicemail": ("Inga röstmeddelanden.", "No voicemail messages."),
    "received": ("Mottaget", "Received"),
    "status": ("Status", "Status"),
    "listen": ("Lyssna", "Listen"),
    "heard": ("Avlyssnat", "Heard"),
    "unheard": ("Nytt", "New"),
    "mark_heard": ("Markera som avlyssnat", "Mark as heard"),
    "mark_unheard": ("Markera som nytt", "Mark as new"),
    "delete": ("Ta bort", "Delete"),
    "voicemail_deleted": ("Meddelandet är borttaget.", "The message was deleted."),
}


def pick_language(cookie: str | None, accept_language: str | None) -> str:
    if cookie in LANGUAGES:
        return cookie
    if accept_language:
        ranked: list[tuple[float, int, str]] = []
        for i, part in enumerate(accept_language.split(",")):
            tag, _, params = part.strip().partition(";")
            q = 1.0
            params = params.strip()
            if params.startswith("q="):
                try:
                    q = float(params[2:])
                except ValueError:
                    q = 0.0
            ranked.append((-q, i, tag.strip().lower()[:2]))
        for _, _, lang in sorted(ranked):
            if lang in LANGUAGES:
                return lang
    return "sv"


def translator(lang: str) -> Callable[[str], str]:
    index = 0 if lang == "sv" else 1

    def t(key: str) -> str:
        pair = STRINGS.get(key)
        return key if pair is None else pair[index]

    return t


# What a call meets, in the guide's words (the table under "Group membership").
_ACTION_WORDS: dict[str, tuple[str, str]] = {
    "voicemail": ("röstbrevlåda", "voicemail"),
    "announcement_voicemail": ("meddelande, sedan röstbrevlåda", "announcement, then voicemail"),
    "announcement": ("endast meddelande (inget röstmeddelande)", "announcement only (no message)"),
    "queue": ("personlig kö", "personal queue"),
}


def _action_words(action: str | None, target: str | None, cause: int | None, index: int) -> str:
    if action == "alt_number":
        return ("vidarekopplas till {}", "forward to {}")[index].format(target or "?")
    if action == "reject":
        return ("samtalet avslutas ({})", "call ends ({})")[index].format(cause or "")
    pair = _ACTION_WORDS.get(action or "")
    return pair[index] if pair else (action or "")


def situation_text(row: Any, lang: str) -> str:
    """One cell of the situation table in ``lang``, from a ``policy.explain.SituationRow``."""
    i = 0 if lang == "sv" else 1
    if row.action == "-":
        return ("inget mobilnummer", "no mobile number")[i]
    if row.situation == "no_answer" and row.seconds is not None:
        return ("efter {} s: {}", "after {} s: {}")[i].format(
            row.seconds, _action_words(row.action, row.target, row.cause, i)
        )
    if row.situation == "busy" and row.action == "ring" and row.then is not None:
        return (
            "ringer (samtal väntar); om alla enheter är upptagna: {}",
            "rings (call waiting); if every device is busy: {}",
        )[i].format(_action_words(row.then, row.target, row.cause, i))
    if row.action == "ring" or (row.decided_by is None and row.situation in ("activity", "off_hours")):
        return ("ringer (ingen särskild hantering)", "rings (no special handling)")[i]
    return _action_words(row.action, row.target, row.cause, i)
