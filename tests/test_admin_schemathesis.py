"""schemathesis against the served OpenAPI document of a real running admin server.

Stateless checks only (no 5xx, every response matches its documented schema), a bounded number of
examples per operation, deterministic generation. The run uses schemathesis's own command line
(``st run``) so that it talks HTTP to the uvicorn server exactly like any client.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from admin_server import AdminServer, admin_server, bearer_token  # noqa: F401  (fixture)

ST = Path(sys.executable).with_name("st")


def _run(server: AdminServer, token: str, examples: int, cwd: Path) -> subprocess.CompletedProcess[str]:
    if not ST.exists():
        pytest.skip("schemathesis command line (st) is not installed")
    return subprocess.run(
        [
            str(ST),
            "run",
            f"{server.url}/api/v1/openapi.json",
            "--checks",
            "not_a_server_error,response_schema_conformance",
            "--max-examples",
            str(examples),
            "--header",
            f"Authorization: Bearer {token}",
            "--generation-deterministic",
            "--no-shrink",
            "--workers",
            "2",
            "--request-timeout",
            "20",
            # Deleting API tokens would delete the token this run authenticates with.
            "--exclude-name",
            "DELETE /api/v1/tokens/{token_id}",
        ],
        capture_output=True,
        text=True,
        timeout=170,
        cwd=cwd,  # schemathesis keeps its example database in ./.schemathesis
    )


def test_schemathesis_as_admin(admin_server: AdminServer, tmp_path: Path) -> None:  # noqa: F811
    result = _run(admin_server, bearer_token(admin_server), examples=15, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
    assert "passed" in result.stdout


def test_schemathesis_as_user(admin_server: AdminServer, tmp_path: Path) -> None:  # noqa: F811
    result = _run(admin_server, bearer_token(admin_server, "bob"), examples=5, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
