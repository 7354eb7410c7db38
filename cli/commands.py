"""The `sutram` subcommands: each takes the parsed arguments (and an ApiClient when it calls the API),
prints to `out` and returns an exit code."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

from cli.client import ApiClient, ApiError, run_path
from cli.config import save_user_config
from cli.display import follow, print_json, print_run, step_line, symbols_for
from cli.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CliError


def _read_input(value: str) -> Any:
    if value == "-":
        text = sys.stdin.read()
    elif Path(value).is_file():
        text = Path(value).read_text()
    else:
        text = value
    try:
        return json.loads(text)
    except ValueError as exc:
        raise CliError(f"--input is neither a readable file nor valid JSON ({exc})", EXIT_USAGE) from None


def command_login(args: argparse.Namespace, out: TextIO) -> int:
    """Sign in with Cognito's SRP protocol (the password never leaves this machine), answering an
    authenticator-app MFA challenge when the user has one, and save the ID token."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError
    from pycognito.aws_srp import AWSSRP
    from pycognito.exceptions import SoftwareTokenMFAChallengeException

    region, _, pool = str(args.user_pool_id).partition("_")
    if not pool:
        raise CliError(f"--user-pool-id {args.user_pool_id!r} is not a user pool id (<region>_<id>)", EXIT_USAGE)
    password = args.password if args.password is not None else getpass.getpass(f"Password for {args.username}: ")
    cognito = boto3.client("cognito-idp", region_name=args.region or region, endpoint_url=args.endpoint_url)
    srp = AWSSRP(args.username, password, args.user_pool_id, args.user_pool_client_id, client=cognito)
    try:
        try:
            response = srp.authenticate_user()
        except SoftwareTokenMFAChallengeException as challenge:
            code = args.mfa_code or getpass.getpass("MFA code from your authenticator app: ")
            response = cognito.respond_to_auth_challenge(
                ClientId=args.user_pool_client_id,
                ChallengeName="SOFTWARE_TOKEN_MFA",
                Session=challenge.get_tokens()["Session"],
                ChallengeResponses={"USERNAME": args.username, "SOFTWARE_TOKEN_MFA_CODE": code},
            )
    except ClientError as exc:
        raise CliError(f"login failed: {exc.response['Error'].get('Message') or exc}") from None
    except (BotoCoreError, ValueError) as exc:
        raise CliError(f"login failed: {exc}") from None
    except Exception as exc:  # pycognito's other challenges: a new password, SMS MFA, MFA setup
        raise CliError(f"login needs another step ({exc}); complete it in Cognito first") from None
    result = response.get("AuthenticationResult")
    if not result:
        raise CliError(f"login needs another step ({response.get('ChallengeName')}); complete it in Cognito first")
    expires_at = datetime.fromtimestamp(time.time() + int(result.get("ExpiresIn", 3600)), UTC)
    path = save_user_config(
        {"api_url": args.api, "token": result["IdToken"], "token_expires_at": expires_at.isoformat(timespec="seconds")}
    )
    out.write(f"logged in as {args.username}; token saved to {path} (valid until {expires_at:%Y-%m-%d %H:%M} UTC)\n")
    return EXIT_OK


def command_run(args: argparse.Namespace, client: ApiClient, out: TextIO) -> int:
    headers = {"Idempotency-Key": args.idempotency_key} if args.idempotency_key else None
    status, run = client.request(
        "POST",
        f"/workflows/{quote(args.workflow, safe='')}/runs",
        body={"input": _read_input(args.input)} | ({"version": args.version} if args.version else {}),
        headers=headers,
    )
    if args.follow:
        if not args.json:
            out.write(f"{'started' if status == 201 else 'already started'} {run['run_id']}\n")
        return follow(client, run["run_id"], out, as_json=args.json)
    if args.json:
        print_json(run, out)
    else:
        out.write(f"{'started' if status == 201 else 'already started'} {run['run_id']} ({run['status']})\n")
    return EXIT_OK


def command_status(args: argparse.Namespace, client: ApiClient, out: TextIO) -> int:
    run = client.get(run_path(args.run_id))
    if args.json:
        print_json(run, out)
    else:
        print_run(run, out)
    return EXIT_OK


def command_steps(args: argparse.Namespace, client: ApiClient, out: TextIO) -> int:
    steps = client.get(run_path(args.run_id, "steps"))["steps"]
    if args.json:
        print_json({"steps": steps}, out)
    else:
        symbols = symbols_for(out)
        for step in steps:
            out.write(step_line(step, symbols) + "\n")
        if not steps:
            out.write("no step has started yet\n")
    return EXIT_OK


def command_runs(args: argparse.Namespace, client: ApiClient, out: TextIO) -> int:
    page = client.get(
        "/runs", {"workflow": args.workflow, "status": args.status, "limit": args.limit, "cursor": args.cursor}
    )
    if args.json:
        print_json(page, out)
        return EXIT_OK
    for run in page["runs"]:
        out.write(f"{run['run_id']}  {run['created_at']}  {run['status']:<9}  {run['workflow']}\n")
    if not page["runs"]:
        out.write("no runs\n")
    if page.get("next_cursor"):
        out.write(f"more: sutram runs --cursor {page['next_cursor']}\n")
    return EXIT_OK


def command_approvals(args: argparse.Namespace, client: ApiClient, out: TextIO) -> int:
    page = client.get("/approvals", {"status": args.status, "limit": args.limit, "cursor": args.cursor})
    if args.json:
        print_json(page, out)
        return EXIT_OK
    for approval in page["approvals"]:
        out.write(
            f"{approval['approval_id']}  {approval['created_at']}  {approval['status']:<8}  "
            f"{approval['group']}  {approval['workflow']}/{approval['step_path']}  {approval['summary']}\n"
        )
    if not page["approvals"]:
        out.write(f"no {args.status} approvals\n")
    if page.get("next_cursor"):
        out.write(f"more: sutram approvals --status {args.status} --cursor {page['next_cursor']}\n")
    return EXIT_OK


def command_recover(args: argparse.Namespace, client: ApiClient, out: TextIO) -> int:
    """`resume`, `abort`, `fork` and `resolve`: one POST to /runs/{id}/<command>."""
    body: dict[str, Any] = {}
    if args.command == "resume" and args.version is not None:
        body["version"] = args.version
    elif args.command == "abort":
        body["reason"] = args.reason
    elif args.command == "fork":
        body = {"step": args.step} | ({"outputs": _read_input(args.outputs)} if args.outputs else {})
    elif args.command == "resolve":
        body = {"step": args.step, "action": "retry"} if args.retry else {"step": args.step, "action": "record"}
        if not args.retry:
            body["output"] = _read_input(args.record)
    answer = client.request("POST", run_path(args.run_id, args.command), body=body)[1]
    if args.json:
        print_json(answer, out)
    elif args.command == "resolve":
        out.write(f"{answer['id']}: {answer['status']}; now run `sutram resume {args.run_id}`\n")
    elif args.command == "fork":
        out.write(f"forked {answer['run_id']} from {args.run_id} at {args.step} ({answer['status']})\n")
    else:
        done = {"resume": "resumed", "abort": "aborted"}[args.command]
        out.write(f"{done} {answer['run_id']} ({answer['status']}, execution {answer['execution']})\n")
    return EXIT_OK


def command_replay(args: argparse.Namespace, client: ApiClient, out: TextIO) -> int:
    """Replay one run, or a workflow's last ended runs, on a version; print whether each replay
    reached the recorded outcome or where it diverged. Exit 1 if any did not match."""
    if args.run_id:
        recorded = [client.get(run_path(args.run_id))]
    elif args.workflow:
        page = client.get(f"/runs?workflow={quote(args.workflow, safe='')}&limit=100")["runs"]
        recorded = [run for run in page if run["status"] in ("SUCCEEDED", "FAILED")][: args.last]
    else:
        raise CliError("name a run, or --workflow (and --last) for a batch", EXIT_USAGE)
    body = {"version": args.version} if args.version else {}
    replays = {
        run["run_id"]: client.request("POST", run_path(run["run_id"], "replay"), body=body)[1] for run in recorded
    }
    deadline = time.monotonic() + args.timeout
    rows = []
    for original_id, replay in replays.items():
        ended = _wait_for_end(client, replay["run_id"], deadline)
        rows.append((original_id, replay["run_id"], *_verdict(client, original_id, ended)))
    if args.json:
        print_json(
            {"replays": [dict(zip(("run_id", "replay_id", "verdict", "detail"), row, strict=True)) for row in rows]},
            out,
        )
    else:
        out.write(f"{'run':<30}{'replay':<30}{'verdict':<12}detail\n")
        for original_id, replay_id, verdict, detail in rows:
            out.write(f"{original_id:<30}{replay_id:<30}{verdict:<12}{detail}\n")
        matched = sum(1 for row in rows if row[2] == "matched")
        out.write(f"{matched} of {len(rows)} replays matched\n")
    return EXIT_OK if all(row[2] == "matched" for row in rows) else EXIT_FAILED


def _wait_for_end(client: ApiClient, run_id: str, deadline: float) -> dict[str, Any]:
    while True:
        run = client.get(run_path(run_id))
        if run["status"] not in ("RUNNING", "PAUSED") or time.monotonic() > deadline:
            return run
        time.sleep(1)


def _verdict(client: ApiClient, original_id: str, replay: dict[str, Any]) -> tuple[str, str]:
    """matched (same status and output), diverged (at a step: the first line of why), or differs."""
    error = replay.get("error") or {}
    if error.get("error") == "ReplayDiverged":
        return "diverged", str(error.get("cause", "")).splitlines()[0]
    original = client.get(run_path(original_id))
    if replay["status"] in ("RUNNING", "PAUSED"):
        return "unfinished", f"still {replay['status']}"
    if replay["status"] != original["status"]:
        return "differs", f"{original['status']} recorded, {replay['status']} replayed ({error.get('error', '')})"

    def artifact(run: dict[str, Any]) -> Any:  # content-addressed: the same output has the same key
        return (run.get("output_artifact") or {}).get("key")

    if replay.get("output") != original.get("output") or artifact(replay) != artifact(original):
        return "differs", "another output"
    return "matched", ""


def command_decide(args: argparse.Namespace, client: ApiClient, out: TextIO) -> int:
    """`approve` and `reject`: one decision; a second one fails and shows the first."""
    body: dict[str, Any] = {"decision": args.command}
    if args.comment:
        body["comment"] = args.comment
    if getattr(args, "proposal", None) is not None:
        body["proposal"] = _read_input(args.proposal)
    path = f"/approvals/{quote(args.approval_id, safe='')}/decision"
    try:
        approval = client.request("POST", path, body=body)[1]
    except ApiError as exc:
        first = exc.body.get("approval", {}).get("decision") if isinstance(exc.body, dict) else None
        if exc.code == "already_decided" and first:
            raise CliError(f"{exc}; it was {_decision_text(first)}") from None
        raise
    if args.json:
        print_json(approval, out)
    else:
        out.write(f"{approval['status']} {approval['approval_id']} ({_decision_text(approval['decision'])})\n")
    return EXIT_OK


def _decision_text(decision: dict[str, Any]) -> str:
    edited = ", with an edited proposal" if decision.get("edited_proposal") is not None else ""
    return f"{decision['outcome']} by {decision['by']} at {decision['at']}{edited}"


def command_follow(args: argparse.Namespace, client: ApiClient, out: TextIO) -> int:
    return follow(client, args.run_id, out, as_json=args.json)


def command_validate(args: argparse.Namespace, out: TextIO) -> int:
    """Load every definition the way `cdk synth` and the API do; report each problem with its location."""
    from sutram.definition import DefinitionError, load_definition

    files = sorted(
        {file for path in map(Path, args.paths) for file in (path.glob("*.yaml") if path.is_dir() else [path])}
    )
    if not files:
        raise CliError(f"no workflow files (*.yaml) in {', '.join(args.paths)}", EXIT_USAGE)
    problems = 0
    names: dict[str, Path] = {}
    for file in files:
        try:
            definition = load_definition(file)
        except (DefinitionError, OSError) as exc:
            problems += 1
            out.write(f"error {exc}\n")
            continue
        if definition.name in names:
            problems += 1
            out.write(f"error {file}: workflow name {definition.name!r} is also defined in {names[definition.name]}\n")
            continue
        names[definition.name] = file
        out.write(f"ok    {file}: {definition.name}, {len(definition.steps)} top-level steps\n")
    return EXIT_FAILED if problems else EXIT_OK
