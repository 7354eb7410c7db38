"""The `sutram` command against a local Sutram: in-process through cli.main.main, and as the
installed console script in a subprocess configured by SUTRAM_API_URL / SUTRAM_TOKEN."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cli import display as cli_display
from tests.support import run_cli, without_user_configuration

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

DOCUMENT = {
    "title": "Supplier audit",
    "content": "Maria Okafor visited the Porto plant. Defects fell sharply. Delivery is late.\n\n"
    "The board chaired by Daniel Reyes will decide.",
}
# The two model calls run in the parallel branches of `study`, and start in either order.
SUMMARISE, ENTITIES = "study.summary/summarise", "study.entities/entities"
STEPS = ["extract", SUMMARISE, ENTITIES, "report"]
STEP_ORDERS = (STEPS, ["extract", ENTITIES, SUMMARISE, "report"])
SUTRAM = Path(sys.executable).with_name("sutram")


@pytest.fixture(autouse=True)
def no_user_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No ~/.sutram/config.json or .sutram/local.json of the developer's may leak into these runs."""
    without_user_configuration(monkeypatch, home=tmp_path, cwd=tmp_path)
    monkeypatch.setattr(cli_display, "POLL_INTERVAL_SECONDS", 0.02)


@pytest.fixture
def sutram_cli(sutram: Any, capsys: pytest.CaptureFixture[str]) -> Any:
    """Run `sutram ARGS` in this process as `user`: (exit code, stdout, stderr)."""

    def run(*args: str, user: str = "ada") -> tuple[int, str, str]:
        return run_cli(capsys, sutram.api_url, sutram.tokens[user], *args)

    return run


def installed_sutram(*args: str, environment: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """The installed `sutram` console script, run in a subprocess."""
    return subprocess.run(
        [str(SUTRAM), *args], env=environment, cwd=cwd, capture_output=True, text=True, timeout=30, check=False
    )


@pytest.fixture(scope="module")
def adas_run(api: Any) -> dict[str, Any]:
    return api.run_to_end({"document": DOCUMENT})


def test_run_follow_shows_each_step_succeed_and_exits_0(sutram_cli):
    # When
    code, out, err = sutram_cli("run", "document-analysis", "--input", json.dumps({"document": DOCUMENT}), "--follow")

    # Then
    assert (code, err) == (0, "")
    lines = out.splitlines()
    started = re.fullmatch(r"started (r-[0-9a-z]{26})", lines[0])
    assert started, lines[0]
    final = {}
    for line in lines[1:-2]:  # a step's line each time its status changes; the last one counts
        step = re.match(r"^\S (\S+)\s+(RUNNING|SUCCEEDED|FAILED)\s+attempt (\d+)", line)
        assert step, line
        final[step[1]] = (step[2], int(step[3]))
    assert final == {step: ("SUCCEEDED", 1) for step in STEPS}
    assert list(final) in STEP_ORDERS
    assert re.fullmatch(rf"run {started[1]}  document-analysis  SUCCEEDED  \d+\.\d\ds", lines[-2])
    assert lines[-1] == "4 steps completed, 2 model calls, 122 in / 48 out tokens"


def test_run_with_the_same_idempotency_key_twice_says_already_started(sutram_cli, api):
    # Given
    arguments = ("run", "document-analysis", "--input", json.dumps({"document": DOCUMENT}))
    code, out, _ = sutram_cli(*arguments, "--idempotency-key", "e2e-cli-key")
    assert code == 0
    run_id = re.fullmatch(r"started (r-[0-9a-z]{26}) \(RUNNING\)\n", out)[1]

    # When
    code, out, err = sutram_cli(*arguments, "--idempotency-key", "e2e-cli-key")

    # Then
    assert (code, err) == (0, "")
    assert re.fullmatch(rf"already started {run_id} \((RUNNING|SUCCEEDED)\)\n", out)
    api.started["ada"].append(run_id)  # started outside the api client: let it settle before the cloud stops
    api.wait(run_id)


def test_status_json_prints_the_run_as_the_api_returns_it(sutram_cli, api, adas_run):
    code, out, err = sutram_cli("status", adas_run["run_id"], "--json")

    assert (code, err) == (0, "")
    printed = json.loads(out)
    assert printed["status"] == "SUCCEEDED"
    assert printed == api.get(f"/runs/{adas_run['run_id']}").json()


def test_steps_lists_the_four_steps_in_order(sutram_cli, adas_run):
    code, out, err = sutram_cli("steps", adas_run["run_id"])

    assert (code, err) == (0, "")
    lines = {line.split()[1]: line for line in out.splitlines()}
    assert list(lines) in STEP_ORDERS
    assert all(re.match(r"^\S \S+\s+SUCCEEDED\s+attempt 1\s", line) for line in lines.values())
    assert lines[SUMMARISE].endswith("  59 in / 15 out") and lines[ENTITIES].endswith("  63 in / 33 out")


def test_status_of_another_tenants_run_exits_1_saying_there_is_no_such_run(sutram_cli, adas_run):
    code, out, err = sutram_cli("status", adas_run["run_id"], user="grace")

    assert code == 1
    assert out == ""
    assert err == "sutram: error: no such run [HTTP 404, run_not_found]\n"


def test_run_with_an_invalid_input_exits_1_naming_the_field(sutram_cli):
    code, out, err = sutram_cli("run", "document-analysis", "--input", '{"document": {"content": "x"}}')

    assert (code, out) == (1, "")
    assert err == (
        "sutram: error: input.document.title is required (field: input.document.title) [HTTP 400, invalid_input]\n"
    )


def test_the_installed_command_reads_the_api_and_token_from_the_environment(sutram, adas_run, tmp_path):
    # Given: only the environment says where the API is and who is calling
    environment = {
        **os.environ,
        "HOME": str(tmp_path),
        "SUTRAM_API_URL": sutram.api_url,
        "SUTRAM_TOKEN": sutram.tokens["ada"],
    }

    # When
    result = installed_sutram("status", adas_run["run_id"], "--json", environment=environment, cwd=tmp_path)

    # Then
    assert (result.returncode, result.stderr) == (0, "")
    run = json.loads(result.stdout)
    assert (run["run_id"], run["status"], run["steps_completed"]) == (adas_run["run_id"], "SUCCEEDED", 4)


def test_the_installed_command_with_a_bad_token_exits_1_and_says_how_to_log_in(sutram, adas_run, tmp_path):
    environment = {**os.environ, "HOME": str(tmp_path), "SUTRAM_API_URL": sutram.api_url, "SUTRAM_TOKEN": "expired"}

    result = installed_sutram("status", adas_run["run_id"], environment=environment, cwd=tmp_path)

    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        "sutram: error: Unauthorized; run `sutram login` or set SUTRAM_TOKEN [HTTP 401, http_error]\n"
    )


def test_replay_runs_a_recorded_run_again_calling_no_model_and_says_it_matched(sutram_cli, sutram, api, adas_run):
    model_calls = sutram.cloud.tally("model_calls")

    code, out, err = sutram_cli("replay", adas_run["run_id"])

    assert (code, err) == (0, "")
    header, row, summary = out.splitlines()
    assert header.split() == ["run", "replay", "verdict", "detail"]
    original, replay_id, verdict = row.split()
    assert (original, verdict) == (adas_run["run_id"], "matched")
    assert summary == "1 of 1 replays matched"
    assert sum(model_calls.counts.values()) == 0
    api.started["ada"].append(replay_id)


def test_replay_without_a_run_or_a_workflow_exits_2(sutram_cli):
    assert sutram_cli("replay") == (2, "", "sutram: error: name a run, or --workflow (and --last) for a batch\n")
