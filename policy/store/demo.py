"""The demo company of SPEC section 7, created on first start with an empty database.

Demo credentials are for loopback only: ``Store.demo_passwords_unchanged()`` tells the server
whether any of them is still in force, and the server refuses a non-loopback listen address then.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DEMO_ADMIN_LOGIN",
    "DEMO_ALT_NUMBER",
    "DEMO_COMPANY_NAME",
    "DEMO_COUNTRY",
    "DEMO_DEPARTMENTS",
    "DEMO_HOURS",
    "DEMO_LANGUAGE",
    "DEMO_TIMEZONE",
    "DEMO_USERS",
    "DemoUser",
]


@dataclass(frozen=True, slots=True)
class DemoUser:
    username: str
    display_name: str
    extension: str
    fixed: str
    mobile: str
    sip_password: str
    department: str


DEMO_COMPANY_NAME = "Demo AB"
DEMO_ALT_NUMBER = "+4681000000"  # the reception, external
DEMO_TIMEZONE = "Europe/Stockholm"
DEMO_COUNTRY = "SE"
DEMO_LANGUAGE = "sv"
DEMO_HOURS: tuple[str, ...] = ("mon-fri 08:00-17:00",)
DEMO_DEPARTMENTS: tuple[str, ...] = ("Sales", "Support")
DEMO_USERS: tuple[DemoUser, ...] = (
    DemoUser("alice", "Alice Andersson", "1001", "+4681001001", "+46701001001", "alice-demo", "Sales"),
    DemoUser("bob", "Bob Berg", "1002", "+4681001002", "+46701001002", "bob-demo", "Sales"),
    DemoUser("carol", "Carol Carlsson", "1003", "+4681001003", "+46701001003", "carol-demo", "Support"),
)
# The web admin login (SPEC 7); the admin accounts table belongs to the admin package.
DEMO_ADMIN_LOGIN: tuple[str, str] = ("admin", "admin-demo")
