"""Schemathesis against a live API: what /openapi.json says, the API must do.

A real store and api run on port 0 (the conftest fixtures, scrypt at a tiny cost), with one
signed-up account. Schemathesis (pinned in requirements-dev.txt, which ``make test`` installs)
runs as its own process, ``python -m schemathesis.cli run <api>/openapi.json``, with every
check (``--checks all``: server errors, status codes, content types, response schemas and
headers, schema-valid requests accepted and schema-invalid ones refused, unsupported methods
and their Allow, missing headers, ignored auth, use after free, resource availability) over
every phase: examples, coverage, fuzzing and stateful sequences along the links it infers
from Location headers. Secured operations get the account's token, fetched by logging in
(``POST /sessions``) and fetched again on a 401 (after ``DELETE /sessions`` has ended it);
the ignored-auth check sends them without one and with a bad one, and the other operations
go without. At most MAX_EXAMPLES cases an operation, seed SEED, one worker (two crashed
Schemathesis 4.32 inside Hypothesis in a trial run): about 20 s on the 2-core machine.

The test fails on any failure or error Schemathesis reports, and nothing is excluded: every
check runs with its default settings. One hook, in tests/api/schemathesis_hooks.py, makes
the data more like a real client's: each Idempotency-Key that fits the documented pattern is
replaced by a fresh one (Schemathesis repeats its shortest keys, and a repeated key is a
replay of an older answer or a 422, both right but not what the checks expect of a new
request). The key's own rules stay under test: keys that do not fit are sent as drawn, and
tests/api/test_openapi.py replays and reuses keys on purpose.

Skipped, saying so, where Schemathesis is not installed (a bare ``pytest`` outside .venv).
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from api.openapi import document
from tests.api.conftest import StartApi
from tests.api.helpers import PASSWORD, sign_up
from httpkit import Server

MAX_EXAMPLES = 30
SEED = 1
RUN_TIMEOUT_S = 180
PHASES = ("examples", "coverage", "fuzzing", "stateful")
ROOT = Path(__file__).resolve().parents[2]
HOOKS = Path(__file__).with_name("schemathesis_hooks.py")

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("schemathesis") is None,
    reason="schemathesis is not installed: `make test` installs it from requirements-dev.txt")


def config(username: str, password: str) -> str:
    """Return the schemathesis.toml of the run."""
    return "\n".join([
        f"seed = {SEED}",
        "workers = 1",
        f"hooks = {json.dumps(str(HOOKS))}",
        "[generation]",
        f"max-examples = {MAX_EXAMPLES}",
        'database = "none"',  # nothing kept between runs: each is the same
        "[auth.dynamic.openapi.bearer]",
        'path = "/sessions"',
        'method = "post"',
        f"payload = {{ username = {json.dumps(username)}, password = {json.dumps(password)} }}",
        'extract_selector = "/token"',
        "retry_on = [401]",
        ""])


def run_schemathesis(url: str, workdir: Path, settings: str) -> tuple[dict[str, Any], str]:
    """Run Schemathesis on the API at ``url``; return its JSON report and its output."""
    (workdir / "schemathesis.toml").write_text(settings)
    command = [sys.executable, "-m", "schemathesis.cli",
               "--config-file", str(workdir / "schemathesis.toml"), "run",
               f"{url}/openapi.json", "--checks", "all", "--no-color",
               "--report", "json", "--report-json-path", str(workdir / "report.json")]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # the hooks read api.openapi
    done = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True,
                          timeout=RUN_TIMEOUT_S, check=False)
    output = done.stdout + done.stderr
    assert (workdir / "report.json").exists(), output
    report: dict[str, Any] = json.loads((workdir / "report.json").read_text())
    return report, output


def test_schemathesis_finds_nothing_against_a_live_api(
        start_api: StartApi, store: Server, tmp_path: Path) -> None:
    api = start_api(store.url)
    sign_up(api, "fuzzer")
    report, output = run_schemathesis(api.url, tmp_path, config("fuzzer", PASSWORD))
    assert report["failures"] == [] and report["errors"] == [], output
    assert report["exit_code"] == 0 and report["complete"], output
    assert {name: phase["status"] for name, phase in report["phases"].items()} == {
        name: "success" for name in PHASES}, output
    operations = sum(len(item) for item in document()["paths"].values())
    assert report["test_cases"]["generated"] >= 20 * operations, output
