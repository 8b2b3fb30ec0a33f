"""`vidare serve` and friends refuse a bad configuration with one line and exit status 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def vidare(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vidare", *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--set", "sip.bogus=1"], "unknown key sip.bogus"),
        (["--set", "nosuch.key=1"], "unknown section [nosuch]"),
        (["--set", "sip.listen=example.com:5060"], "sip.listen: bad address"),
        (["--set", "trunks.pstn=127.0.0.1:70000"], "port must be 1-65535"),
        (["--set", "sip.t1=fast"], "sip.t1: expected a number"),
        (["--set", "log.format=xml"], "log.format"),
        (["--set", "sip.digest_algorithms=SHA-1"], "sip.digest_algorithms"),
        (["--config", "/nonexistent/vidare.toml"], "cannot read config file"),
    ],
    ids=[
        "unknown-key",
        "unknown-section",
        "bad-host",
        "bad-port",
        "bad-number",
        "bad-choice",
        "bad-algorithm",
        "unreadable-file",
    ],
)
def test_bad_config_exits_2_with_one_line(tmp_path: Path, args: list[str], needle: str) -> None:
    result = vidare("serve", "--data-dir", str(tmp_path), "--set", "media.spawn=false", *args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], result.stderr


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[sip\nlisten = 1\n")
    result = vidare("serve", "--config", str(bad), "--data-dir", str(tmp_path))
    assert result.returncode == 2
    assert "is not valid TOML" in result.stderr and str(bad) in result.stderr


def test_non_loopback_refused_while_demo_passwords_unchanged(tmp_path: Path) -> None:
    # 0.0.0.0 is not loopback: the demo credentials must never be exposed (SPEC 7).
    result = vidare(
        "serve",
        "--data-dir",
        str(tmp_path),
        "--set",
        "sip.listen=0.0.0.0:45999",
        "--set",
        "media.spawn=false",
        "--set",
        "admin.enabled=false",
    )
    assert result.returncode == 2
    assert "demo passwords unchanged" in result.stderr


def test_an_operator_adds_a_group_by_editing_data_only(tmp_path: Path) -> None:
    extra = tmp_path / "groups.toml"
    extra.write_text(
        """
[[group]]
id = "no_answer.fixed.voicemail.45"
name = "45 sek Fastnr -> Telefonsvar"
name_en = "45 s fixed -> voicemail"
situation = "no_answer"
number = "fixed"
action = "voicemail"
seconds = 45
description = "Voicemail after 45 seconds without answer (fixed number)."
"""
    )
    common = ["--data-dir", str(tmp_path), "--set", f"policy.extra_catalogue={extra}"]
    result = vidare(
        "user",
        "groups",
        "bob",
        "--remove",
        "no_answer.both.voicemail.30",
        "--add",
        "no_answer.fixed.voicemail.45",
        *common,
    )
    assert result.returncode == 0, result.stderr
    explain = vidare("explain", "--to", "+4681001002", "--at", "2026-11-26T10:00+01:00", "--json", *common)
    assert explain.returncode == 0, explain.stderr
    assert '"no_answer.fixed.voicemail.45"' in explain.stdout and '"seconds": 45' in explain.stdout
    broken = tmp_path / "broken.toml"
    broken.write_text('[[group]]\nid = "x"\nsituation = "no_answer"\n')
    bad = vidare(
        "user", "show", "bob", "--data-dir", str(tmp_path), "--set", f"policy.extra_catalogue={broken}"
    )
    assert bad.returncode == 2 and "policy.extra_catalogue" in bad.stderr
