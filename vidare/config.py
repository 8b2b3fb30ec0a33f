"""Configuration: config.toml plus ``--set section.key=value`` overrides (SPEC section 7).

Every key has a type fixed by the embedded default, so an unknown key, a value of the wrong type
or a bad address is refused with one clear line (``ConfigError``; the command line exits 2).
"""

from __future__ import annotations

import ipaddress
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_CONFIG_PATH", "Config", "ConfigError", "HostPort", "load_config"]

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent / "default_config.toml"


class ConfigError(Exception):
    """A configuration problem, worded for one line on stderr."""


@dataclass(frozen=True, slots=True)
class HostPort:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


def parse_host_port(text: str, what: str) -> HostPort:
    """``127.0.0.1:5060``, ``[::1]:5060`` or ``localhost:5060``; the host must be an IP or localhost."""
    text = text.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise ConfigError(f"{what}: bad address {text!r} (expected [v6addr]:port)")
        port_text = rest[1:]
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep:
            raise ConfigError(f"{what}: bad address {text!r} (expected host:port)")
    if host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ConfigError(f"{what}: bad address {text!r} ({host!r} is not an IP address)") from None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"{what}: bad address {text!r} (port must be 1-65535)")
    return HostPort("127.0.0.1" if host == "localhost" else host, int(port_text))


_ADDRESS_KEYS = {
    ("sip", "listen"),
    ("trunks", "pstn"),
    ("trunks", "mobile"),
    ("media", "address"),
    ("admin", "listen"),
}
_CHOICES = {("log", "format"): {"auto", "json", "console"}, ("log", "level"): {"debug", "info", "warning"}}


@dataclass(frozen=True, slots=True)
class Config:
    """The validated configuration. ``raw`` keeps every section as a plain dict."""

    raw: dict[str, dict[str, Any]]
    data_dir: Path
    base_dir: Path  # the config file's folder (or the working directory): relative paths start here

    def get(self, section: str, key: str) -> Any:
        return self.raw[section][key]

    def address(self, section: str, key: str) -> HostPort:
        return parse_host_port(str(self.raw[section][key]), f"{section}.{key}")

    @property
    def var_dir(self) -> Path:
        return self.data_dir / "var"

    @property
    def extra_catalogue(self) -> Path | None:
        """The operator's extra group catalogue, relative paths from the config file's folder."""
        text = str(self.raw["policy"]["extra_catalogue"])
        if not text:
            return None
        path = Path(text)
        return path if path.is_absolute() else (self.base_dir / path).resolve()

    @property
    def database_url(self) -> str:
        url = str(self.raw["store"]["url"])
        if url:
            return url
        return f"sqlite+aiosqlite:///{self.var_dir / 'vidare.db'}"


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path} is not valid TOML: {e}") from None


def _coerce(section: str, key: str, value: Any, default: Any) -> Any:
    """Check (and for --set strings, convert) a value against the type of its default."""
    name = f"{section}.{key}"
    if isinstance(default, bool):
        if isinstance(value, str):
            if value.lower() in ("true", "1", "yes", "on"):
                return True
            if value.lower() in ("false", "0", "no", "off"):
                return False
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{name}: expected true or false, got {value!r}")
    if isinstance(default, int):
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                raise ConfigError(f"{name}: expected a whole number, got {value!r}") from None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{name}: expected a whole number, got {value!r}")
    if isinstance(default, float):
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                raise ConfigError(f"{name}: expected a number, got {value!r}") from None
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{name}: expected a number, got {value!r}")
    if not isinstance(value, str):
        raise ConfigError(f"{name}: expected a string, got {value!r}")
    return value


def load_config(
    path: Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    data_dir: Path | None = None,
) -> Config:
    """Defaults, then the config file (if given), then ``--set`` overrides, then ``--data-dir``."""
    defaults = _read_toml(DEFAULT_CONFIG_PATH)
    merged: dict[str, dict[str, Any]] = {s: dict(v) for s, v in defaults.items()}

    def put(section: str, key: str, value: Any, origin: str) -> None:
        if section not in defaults:
            raise ConfigError(f"{origin}: unknown section [{section}]")
        if key not in defaults[section]:
            raise ConfigError(f"{origin}: unknown key {section}.{key}")
        merged[section][key] = _coerce(section, key, value, defaults[section][key])

    if path is not None:
        for section, values in _read_toml(path).items():
            if not isinstance(values, dict):
                raise ConfigError(f"{path}: {section!r} must be a [section]")
            for key, value in values.items():
                put(section, key, value, str(path))
    for item in overrides:
        name, sep, value = item.partition("=")
        section, dot, key = name.strip().partition(".")
        if not sep or not dot:
            raise ConfigError(f"--set {item!r}: expected section.key=value")
        put(section, key, value.strip(), f"--set {name.strip()}")

    for section, key in _ADDRESS_KEYS:
        parse_host_port(str(merged[section][key]), f"{section}.{key}")
    for (section, key), choices in _CHOICES.items():
        if merged[section][key] not in choices:
            raise ConfigError(
                f"{section}.{key}: {merged[section][key]!r} is not one of {', '.join(sorted(choices))}"
            )
    for key in ("t1", "t2", "t4", "nonce_lifetime"):
        if merged["sip"][key] <= 0:
            raise ConfigError(f"sip.{key}: must be positive")
    if merged["sip"]["min_expires"] > merged["sip"]["max_expires"]:
        raise ConfigError("sip.min_expires: must not exceed sip.max_expires")

    base = path.parent if path is not None else Path.cwd()
    if data_dir is None:
        data_dir = base / str(merged["store"]["data_dir"])
    return Config(raw=merged, data_dir=data_dir.resolve(), base_dir=base.resolve())
