"""`sutram run`, `status`, `steps`, `runs` and `follow` against the real API handler, served by the
local HTTP adapter over moto; the live display; configuration and `sutram login`."""

from __future__ import annotations

import argparse
import io
import json
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from cli import commands as cli_commands
from cli import config as cli_config
from cli import display as cli_display
from cli import main as cli
from localcloud.moto_patches import verify_srp_passwords
from sutram import wiring
from sutram.handlers.api import handler as api_handler
from sutram.store.checkpoints import StepKey
from tests.support import run_cli
from tests.unit.support.api import VALID_INPUT, WORKFLOW, ApiEnvironment, api_environment, claims_for
from tests.unit.support.http import serving

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

CLAIMS = {"token-acme": claims_for("acme"), "token-globex": claims_for("globex")}  # by token
SUCCEEDED_SYMBOL = "✓"  # capsys captures as UTF-8; ASCII terminals get "+"


@dataclass
class CliEnvironment:
    api: ApiEnvironment
    base_url: str
    capsys: pytest.CaptureFixture[str]

    def run(self, *argv: str, token: str = "token-acme") -> tuple[int, str, str]:
        return run_cli(self.capsys, self.base_url, token, *argv)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], home: Path) -> Iterator[CliEnvironment]:
    with api_environment(monkeypatch) as api, serving(api_handler, CLAIMS.get) as base_url:
        yield CliEnvironment(api, base_url, capsys)


def _complete_steps(run_id: str) -> None:
    store = wiring.checkpoint_store()
    for step_id, usage in (("extract", None), ("summarise", {"input_tokens": 120, "output_tokens": 30})):
        key = StepKey("acme", run_id, step_id)
        claim = store.claim(key, step_type="llm" if usage else "tool", lease_seconds=60, at_most_once=False)
        store.complete(claim, f"{step_id} done", usage)  # type: ignore[arg-type]


# --- run, status, steps, runs -------------------------------------------------------------------


def test_run_starts_a_run_and_prints_its_id(env: CliEnvironment) -> None:
    code, out, err = env.run("run", WORKFLOW, "--input", json.dumps(VALID_INPUT))

    assert (code, err) == (0, "")
    (execution,) = env.api.executions()
    assert out == f"started {execution['name']} (RUNNING)\n"


def test_run_reads_the_input_from_a_file_and_replays_with_an_idempotency_key(env: CliEnvironment, home: Path) -> None:
    (home / "input.json").write_text(json.dumps(VALID_INPUT))

    first = env.run("run", WORKFLOW, "--input", "input.json", "--idempotency-key", "k1", "--json")
    second = env.run("run", WORKFLOW, "--input", "input.json", "--idempotency-key", "k1")

    assert first[0] == 0
    run_id = json.loads(first[1])["run_id"]
    assert second == (0, f"already started {run_id} (RUNNING)\n", "")
    assert len(env.api.executions()) == 1


def test_run_with_invalid_input_prints_the_api_error_and_exits_1(env: CliEnvironment) -> None:
    code, out, err = env.run("run", WORKFLOW, "--input", '{"document": {"title": "", "content": "x"}}')

    assert (code, out) == (1, "")
    assert err == (
        "sutram: error: input.document.title must be longer than or equal to 1 characters "
        "(field: input.document.title) [HTTP 400, invalid_input]\n"
    )


def test_run_with_input_that_is_neither_a_file_nor_json_exits_2(env: CliEnvironment) -> None:
    code, _, err = env.run("run", WORKFLOW, "--input", "missing.json")

    assert code == 2
    assert err.startswith("sutram: error: --input is neither a readable file nor valid JSON")


def test_status_prints_the_run_and_json_prints_the_api_body(env: CliEnvironment) -> None:
    run_id = env.api.start().body["run_id"]
    _complete_steps(run_id)
    env.api.finish(run_id, status="SUCCEEDED", output={"report": "ok"})

    code, out, _ = env.run("status", run_id)
    json_code, json_out, _ = env.run("status", run_id, "--json")

    assert code == 0
    assert f"run       {run_id}\n" in out
    assert "status    SUCCEEDED\n" in out
    assert "tokens    120 in / 30 out (1 model calls)\n" in out
    assert 'output    {"report": "ok"}\n' in out
    assert json_code == 0
    assert json.loads(json_out) == env.api.call("GET", f"/runs/{run_id}").body


def test_another_tenants_run_is_not_found(env: CliEnvironment) -> None:
    run_id = env.api.start(tenant="acme").body["run_id"]

    code, out, err = env.run("status", run_id, token="token-globex")

    assert (code, out) == (1, "")
    assert err == "sutram: error: no such run [HTTP 404, run_not_found]\n"


def test_steps_lists_each_step_with_status_attempts_and_tokens(env: CliEnvironment) -> None:
    run_id = env.api.start().body["run_id"]
    _complete_steps(run_id)

    code, out, _ = env.run("steps", run_id)

    assert code == 0
    extract, summarise = out.splitlines()
    assert extract.split()[:5] == [SUCCEEDED_SYMBOL, "extract", "SUCCEEDED", "attempt", "1"]
    assert summarise.split()[:5] == [SUCCEEDED_SYMBOL, "summarise", "SUCCEEDED", "attempt", "1"]
    assert summarise.endswith("120 in / 30 out")


def test_runs_lists_newest_first_with_filters_and_a_cursor(env: CliEnvironment) -> None:
    first, second = (env.api.start().body["run_id"] for _ in range(2))
    env.api.finish(first, status="FAILED", error={"Error": "StepFailed", "Cause": "boom"})

    code, out, _ = env.run("runs", "--status", "failed")
    page_code, page_out, _ = env.run("runs", "--limit", "1", "--json")

    assert code == 0
    (line,) = out.splitlines()
    assert line.startswith(first) and "FAILED" in line
    page = json.loads(page_out)
    assert page_code == 0
    assert [run["run_id"] for run in page["runs"]] == [second]
    assert page["next_cursor"]
    _, next_out, _ = env.run("runs", "--limit", "1", "--cursor", page["next_cursor"])
    assert next_out.startswith(first)


def test_a_rejected_token_exits_1_and_says_how_to_log_in(env: CliEnvironment) -> None:
    code, _, err = env.run("runs", token="stale")

    assert code == 1
    assert err == "sutram: error: Unauthorized; run `sutram login` or set SUTRAM_TOKEN [HTTP 401, http_error]\n"


def test_an_unreachable_api_exits_1(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["runs", "--api", "http://127.0.0.1:9/v1", "--token", "t"])

    assert code == 1
    assert capsys.readouterr().err.startswith("sutram: error: cannot reach http://127.0.0.1:9/v1:")


# --- follow -------------------------------------------------------------------------------------


def _finish_on_first_wait(env: CliEnvironment, monkeypatch: pytest.MonkeyPatch, run_id: str, **outcome: Any) -> None:
    def wait(seconds: float) -> None:
        assert seconds == cli_display.POLL_INTERVAL_SECONDS
        _complete_steps(run_id)
        env.api.finish(run_id, **outcome)

    monkeypatch.setattr(cli_display, "_wait", wait)


def test_run_follow_shows_steps_as_they_complete_and_exits_0_on_success(
    env: CliEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = env.api.start(key="follow-me").body["run_id"]
    _finish_on_first_wait(env, monkeypatch, run_id, status="SUCCEEDED", output="report")

    code, out, _ = env.run(
        "run", WORKFLOW, "--input", json.dumps(VALID_INPUT), "--idempotency-key", "follow-me", "--follow"
    )

    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"already started {run_id}"
    assert [line.split()[:3] for line in lines[1:3]] == [
        [SUCCEEDED_SYMBOL, "extract", "SUCCEEDED"],
        [SUCCEEDED_SYMBOL, "summarise", "SUCCEEDED"],
    ]
    assert lines[3].startswith(f"run {run_id}  {WORKFLOW}  SUCCEEDED")
    assert lines[4] == "2 steps completed, 1 model calls, 120 in / 30 out tokens"


def test_follow_exits_1_when_the_run_fails_and_prints_the_error(
    env: CliEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = env.api.start().body["run_id"]
    _finish_on_first_wait(env, monkeypatch, run_id, status="FAILED", error={"Error": "StepFailed", "Cause": "no JSON"})

    code, out, _ = env.run("follow", run_id)

    assert code == 1
    assert out.splitlines()[-1] == "error: StepFailed: no JSON"


def test_follow_json_prints_the_final_run_and_steps(env: CliEnvironment, monkeypatch: pytest.MonkeyPatch) -> None:
    run_id = env.api.start().body["run_id"]
    _finish_on_first_wait(env, monkeypatch, run_id, status="SUCCEEDED", output="report")

    code, out, _ = env.run("follow", run_id, "--json")

    assert code == 0
    final = json.loads(out)
    assert final["run"]["status"] == "SUCCEEDED"
    assert [step["id"] for step in final["steps"]] == ["extract", "summarise"]


def test_on_a_terminal_the_display_is_redrawn_in_place() -> None:
    class Terminal(io.StringIO):
        encoding = "utf-8"

        def isatty(self) -> bool:
            return True

    out = Terminal()
    display = cli_display.LiveDisplay(out, interactive=out.isatty())
    run = {"run_id": "r-1", "workflow": WORKFLOW, "status": "RUNNING", "created_at": "2025-01-01T00:00:00+00:00"}
    step = {"id": "extract", "status": "RUNNING", "attempts": 1, "started_at": "2025-01-01T00:00:00+00:00"}

    display.update(run, [])
    display.update(run, [step])
    display.update(
        {**run, "status": "SUCCEEDED", "finished_at": "2025-01-01T00:00:02+00:00"},
        [{**step, "status": "SUCCEEDED", "duration_ms": 1500}],
    )

    frames = out.getvalue().split("\x1b[J")
    assert frames[0].startswith("run r-1  document-analysis  RUNNING")
    assert out.getvalue().count("\x1b[1F") == 1  # the second frame erased the first (1 line)
    assert out.getvalue().count("\x1b[2F") == 1  # the third erased the second (2 lines)
    assert frames[-1].endswith("✓ extract                   SUCCEEDED  attempt 1     1.50s\n")


# --- configuration and login --------------------------------------------------------------------


def _config_args(**values: str | None) -> argparse.Namespace:
    return argparse.Namespace(api=values.get("api"), token=values.get("token"))


def test_configuration_precedence_is_flags_env_user_file_then_local_file(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = home / "project" / "sub"
    project.mkdir(parents=True)
    (home / "project" / ".sutram").mkdir()
    (home / "project" / ".sutram" / "local.json").write_text(
        json.dumps({"SUTRAM_API_URL": "http://local/v1", "SUTRAM_TOKEN": "local-token"})
    )
    monkeypatch.chdir(project)

    assert cli_config.load_config(_config_args()) == cli_config.Config("http://local/v1", "local-token")

    cli_config.save_user_config({"api_url": "https://user/v1/", "token": "user-token"})
    assert cli_config.load_config(_config_args()) == cli_config.Config("https://user/v1", "user-token")

    monkeypatch.setenv("SUTRAM_TOKEN", "env-token")
    assert cli_config.load_config(_config_args()) == cli_config.Config("https://user/v1", "env-token")

    assert cli_config.load_config(_config_args(api="https://flag/v1", token="flag-token")) == cli_config.Config(
        "https://flag/v1", "flag-token"
    )


def test_no_configuration_exits_2_with_what_to_do(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["runs"]) == 2
    assert capsys.readouterr().err == (
        "sutram: error: no API URL: pass --api, set SUTRAM_API_URL or run `sutram login --api URL`\n"
    )


@dataclass
class UserPool:
    pool_id: str
    client_id: str


@pytest.fixture
def user_pool(env: CliEnvironment) -> UserPool:
    """A pool whose client signs in with SRP only, as the stack's, and a user `ana`; moto's SRP is
    made to prove the password as Cognito's does (localcloud.moto_patches.verify_srp_passwords)."""
    verify_srp_passwords()
    cognito = boto3.client("cognito-idp")
    pool_id = cognito.create_user_pool(PoolName="sutram")["UserPool"]["Id"]
    client_id = cognito.create_user_pool_client(
        UserPoolId=pool_id, ClientName="cli", ExplicitAuthFlows=["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
    )["UserPoolClient"]["ClientId"]
    cognito.admin_create_user(UserPoolId=pool_id, Username="ana", MessageAction="SUPPRESS")
    cognito.admin_set_user_password(UserPoolId=pool_id, Username="ana", Password="Correct-horse-1", Permanent=True)
    return UserPool(pool_id, client_id)


def _login(env: CliEnvironment, pool: UserPool, *extra: str) -> int:
    return cli.main(
        [
            *("login", "--user-pool-id", pool.pool_id, "--user-pool-client-id", pool.client_id),
            *("--username", "ana", "--api", env.base_url, *extra),
        ]
    )


def test_login_proves_the_password_with_srp_and_saves_an_id_token_readable_only_by_the_user(
    env: CliEnvironment, user_pool: UserPool, monkeypatch: pytest.MonkeyPatch, home: Path
) -> None:
    monkeypatch.setattr(cli_commands.getpass, "getpass", lambda prompt: "Correct-horse-1")

    code = _login(env, user_pool)

    assert code == 0
    path = home / "home" / ".sutram" / "config.json"
    assert env.capsys.readouterr().out.startswith(f"logged in as ana; token saved to {path}")
    saved = json.loads(path.read_text())
    assert saved["api_url"] == env.base_url
    assert saved["token"].count(".") == 2
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert cli_config.load_config(_config_args()) == cli_config.Config(env.base_url, saved["token"])


def test_login_with_a_wrong_password_or_an_unknown_user_exits_1_and_saves_nothing(
    env: CliEnvironment, user_pool: UserPool, home: Path
) -> None:
    assert _login(env, user_pool, "--password", "Correct-horse-2") == 1
    assert env.capsys.readouterr().err == "sutram: error: login failed: Incorrect username or password.\n"

    code = cli.main(
        [
            *("login", "--user-pool-id", user_pool.pool_id, "--user-pool-client-id", user_pool.client_id),
            *("--username", "nobody", "--password", "x", "--api", env.base_url),
        ]
    )
    assert code == 1
    assert env.capsys.readouterr().err.startswith("sutram: error: login failed:")
    assert not (home / "home" / ".sutram" / "config.json").exists()


def test_login_answers_the_authenticator_apps_mfa_challenge(
    env: CliEnvironment, user_pool: UserPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    cognito = boto3.client("cognito-idp")
    tokens = cognito.admin_initiate_auth(
        UserPoolId=user_pool.pool_id,
        ClientId=user_pool.client_id,
        AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "ana", "PASSWORD": "Correct-horse-1"},
    )["AuthenticationResult"]
    cognito.associate_software_token(AccessToken=tokens["AccessToken"])
    cognito.verify_software_token(AccessToken=tokens["AccessToken"], UserCode="123456")
    cognito.admin_set_user_mfa_preference(
        UserPoolId=user_pool.pool_id, Username="ana", SoftwareTokenMfaSettings={"Enabled": True, "PreferredMfa": True}
    )
    prompts: list[str] = []
    answers = {"Password for ana: ": "Correct-horse-1", "MFA code from your authenticator app: ": "123456"}
    monkeypatch.setattr(cli_commands.getpass, "getpass", lambda prompt: prompts.append(prompt) or answers[prompt])

    assert _login(env, user_pool) == 0
    assert prompts == list(answers)  # the password, then the code Cognito asked for


def test_login_names_a_malformed_user_pool_id(env: CliEnvironment, user_pool: UserPool) -> None:
    code = cli.main(
        ["login", "--user-pool-id", "AbCdEf", "--user-pool-client-id", user_pool.client_id, "--username", "ana"]
    )
    assert code == 2
    assert "--user-pool-id 'AbCdEf' is not a user pool id" in env.capsys.readouterr().err


# --- recovery -----------------------------------------------------------------------------------


def test_abort_resume_and_fork_a_run_from_the_command_line(env: CliEnvironment) -> None:
    run_id = env.api.start().body["run_id"]
    _complete_steps(run_id)

    assert env.run("abort", run_id, "--reason", "wrong input") == (0, f"aborted {run_id} (ABORTED, execution 0)\n", "")
    assert env.run("resume", run_id) == (0, f"resumed {run_id} (RUNNING, execution 1)\n", "")
    code, out, err = env.run("fork", run_id, "--step", "study", "--outputs", '{"extract": "fixed"}')
    assert (code, err) == (0, "")
    fork_id = out.split()[1]
    assert out == f"forked {fork_id} from {run_id} at study (RUNNING)\n"
    code, out, err = env.run("resume", run_id)
    assert (code, out) == (1, "")
    assert err.startswith("sutram: error: the run is running; abort it first to resume it")


def test_resolve_refuses_a_step_whose_outcome_is_known(env: CliEnvironment) -> None:
    run_id = env.api.start().body["run_id"]
    _complete_steps(run_id)

    code, out, err = env.run("resolve", run_id, "--step", "extract", "--retry")

    assert (code, out) == (1, "")
    assert "has no at-most-once call of unknown outcome" in err


def test_replay_of_a_workflows_last_ended_runs_prints_one_row_each(env: CliEnvironment) -> None:
    ended = []
    for key in ("a", "b", "c"):
        run_id = env.api.start(key=key).body["run_id"]
        env.api.finish(run_id, status="SUCCEEDED", output={"ok": key})
        ended.append(run_id)
    env.api.start(key="running")  # not ended: not replayed

    code, out, err = env.run("replay", "--workflow", WORKFLOW, "--last", "2", "--timeout", "0")

    # The unit cloud runs no execution, so the replays have not finished.
    assert (code, err) == (1, "")
    header, *rows, summary = out.splitlines()
    assert header.split() == ["run", "replay", "verdict", "detail"]
    assert len(rows) == 2 and {row.split()[0] for row in rows} <= set(ended)
    assert all(row.split()[2:] == ["unfinished", "still", "RUNNING"] for row in rows)
    assert summary == "0 of 2 replays matched"


def test_status_of_a_failed_or_forked_run_says_what_an_operator_can_do_next(env: CliEnvironment) -> None:
    run_id = env.api.start().body["run_id"]
    _complete_steps(run_id)
    env.api.finish(run_id, status="FAILED", error={"Error": "StepFailed", "Cause": "the model is down"})
    fork_id = env.api.call("POST", f"/runs/{run_id}/fork", body={"step": "study"}).body["run_id"]

    _, failed, _ = env.run("status", run_id)
    _, forked, _ = env.run("status", fork_id)

    assert f"next      `sutram resume {run_id}` (after a fix: `--version N`) goes on from its checkpoints" in failed
    assert f"forks     {fork_id}\n" in failed
    assert f"forked    from {run_id} at study\n" in forked
