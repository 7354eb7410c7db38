"""The `sutram` command: log in, start and follow runs, list runs and steps, decide approvals via the HTTP API.

Where the API URL and ID token come from, first match wins:
  1. --api / --token
  2. SUTRAM_API_URL / SUTRAM_TOKEN
  3. ~/.sutram/config.json, written by `sutram login`
  4. .sutram/local.json in this directory or a parent, written by the local cloud

Exit codes: 0 success, 1 an API error or a FAILED run, 2 a usage or configuration problem, 130 interrupted.
Only the standard library (and boto3, for `login`) is used, so the command works wherever sutram installs.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote, urlencode

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
FINAL_STATUSES = ("SUCCEEDED", "FAILED")
POLL_INTERVAL_SECONDS = 0.5
REQUEST_TIMEOUT_SECONDS = 30
LOCAL_CONFIG = Path(".sutram") / "local.json"
SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
UNICODE_SYMBOLS = {"SUCCEEDED": "✓", "FAILED": "✗", "RUNNING": "●"}
ASCII_SYMBOLS = {"SUCCEEDED": "+", "FAILED": "x", "RUNNING": ">"}


class CliError(Exception):
    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class ApiError(CliError):
    """The API answered with an error body: {"error": {code, message, field}} or API Gateway's {"message"}."""

    def __init__(self, status: int, body: Any) -> None:
        detail = body.get("error") if isinstance(body, dict) else None
        if isinstance(detail, dict):
            self.code = str(detail.get("code", "error"))
            message = str(detail.get("message", ""))
            if detail.get("field"):
                message += f" (field: {detail['field']})"
        else:
            self.code = "http_error"
            message = str(body.get("message")) if isinstance(body, dict) and body.get("message") else "request failed"
        if status in (401, 403):
            message += "; run `sutram login` or set SUTRAM_TOKEN"
        super().__init__(f"{message} [HTTP {status}, {self.code}]")
        self.status = status
        self.body = body


# --- configuration ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    api_url: str
    token: str


def user_config_path() -> Path:
    return Path.home() / ".sutram" / "config.json"


def find_local_config(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        if (folder / LOCAL_CONFIG).is_file():
            return folder / LOCAL_CONFIG
    return None


def _read_json_file(path: Path | None) -> dict[str, Any]:
    if path is None or not path.is_file():
        return {}
    try:
        content = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read {path}: {exc}", EXIT_USAGE) from None
    return content if isinstance(content, dict) else {}


def load_config(args: argparse.Namespace) -> Config:
    user = _read_json_file(user_config_path())
    local = _read_json_file(find_local_config(Path.cwd()))
    sources = (
        {"api_url": args.api, "token": args.token},
        {"api_url": os.environ.get("SUTRAM_API_URL"), "token": os.environ.get("SUTRAM_TOKEN")},
        {"api_url": user.get("api_url"), "token": user.get("token")},
        {
            "api_url": local.get("SUTRAM_API_URL") or local.get("api_url"),
            "token": local.get("SUTRAM_TOKEN") or local.get("token"),
        },
    )
    api_url = next((source["api_url"] for source in sources if source["api_url"]), None)
    token = next((source["token"] for source in sources if source["token"]), None)
    if not api_url:
        raise CliError("no API URL: pass --api, set SUTRAM_API_URL or run `sutram login --api URL`", EXIT_USAGE)
    if not token:
        raise CliError("no token: run `sutram login`, pass --token or set SUTRAM_TOKEN", EXIT_USAGE)
    return Config(api_url=api_url.rstrip("/"), token=token)


def save_user_config(values: dict[str, Any]) -> Path:
    path = user_config_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    content = {**_read_json_file(path), **{name: value for name, value in values.items() if value is not None}}
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # the token is a secret
    with os.fdopen(descriptor, "w") as file:
        json.dump(content, file, indent=2)
    return path


# --- the API ------------------------------------------------------------------------------------


class ApiClient:
    def __init__(self, config: Config) -> None:
        self._config = config

    def get(self, path: str, query: dict[str, Any] | None = None) -> Any:
        return self.request("GET", path, query=query)[1]

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        query_string = urlencode({name: value for name, value in (query or {}).items() if value is not None})
        url = self._config.api_url + path + (f"?{query_string}" if query_string else "")
        request = urllib.request.Request(
            url,
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={
                "Authorization": self._config.token,
                "Accept": "application/json",
                **({"Content-Type": "application/json"} if body is not None else {}),
                **(headers or {}),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_SECONDS) as response:
                return response.status, _json_or_text(response.read())
        except urllib.error.HTTPError as exc:
            raise ApiError(exc.code, _json_or_text(exc.read())) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise CliError(f"cannot reach {self._config.api_url}: {reason}") from None


def _json_or_text(payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except ValueError:
        return {"message": payload.decode("utf-8", "replace")[:500]}


def _run_path(run_id: str, *rest: str) -> str:
    return "/".join(["/runs", quote(run_id, safe=""), *rest])


# --- rendering ----------------------------------------------------------------------------------


def _symbols(out: TextIO) -> dict[str, str]:
    encoding = (getattr(out, "encoding", None) or "").lower().replace("-", "")
    return UNICODE_SYMBOLS if encoding.startswith("utf") else ASCII_SYMBOLS


def _duration(milliseconds: int | float | None) -> str:
    if milliseconds is None:
        return ""
    seconds = milliseconds / 1000
    return f"{seconds:.2f}s" if seconds < 60 else f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def _tokens(usage: dict[str, Any] | None) -> str:
    if not usage:
        return ""
    text = f"{usage.get('input_tokens', 0)} in / {usage.get('output_tokens', 0)} out"
    return text + (f" ({usage['cached_tokens']} cached)" if usage.get("cached_tokens") else "")


def step_line(step: dict[str, Any], symbols: dict[str, str], spinner: str | None = None) -> str:
    status = step.get("status", "RUNNING")
    symbol = spinner if status == "RUNNING" and spinner else symbols.get(status, "?")
    duration = _duration(step.get("duration_ms"))
    if duration == "" and status == "RUNNING" and step.get("started_at"):
        duration = _duration(_elapsed_ms(step["started_at"]))
    parts = [f"{symbol} {step['id']:<24}", f"{status:<9}", f"attempt {step.get('attempts', 0)}", f"{duration:>8}"]
    tokens = _tokens(step.get("usage"))
    line = "  ".join(parts) + (f"  {tokens}" if tokens else "")
    if status == "FAILED" and step.get("error"):
        line += f"\n    {step['error']}"
    return line


def run_line(run: dict[str, Any]) -> str:
    end = run.get("finished_at")
    elapsed = _elapsed_ms(run["created_at"], end) if run.get("created_at") else None
    return f"run {run['run_id']}  {run['workflow']}  {run['status']}  {_duration(elapsed)}".rstrip()


def _elapsed_ms(start: str, end: str | None = None) -> float:
    finish = datetime.fromisoformat(end) if end else datetime.now(UTC)
    return max(0.0, (finish - datetime.fromisoformat(start)).total_seconds() * 1000)


class LiveDisplay:
    """Shows a run's steps as they progress: redrawn in place on a terminal, appended lines otherwise."""

    def __init__(self, out: TextIO, *, interactive: bool) -> None:
        self._out = out
        self._interactive = interactive
        self._symbols = _symbols(out)
        self._drawn_lines = 0
        self._printed: dict[str, tuple[Any, Any]] = {}
        self._frame = 0

    def update(self, run: dict[str, Any], steps: list[dict[str, Any]]) -> None:
        if self._interactive:
            spinner = SPINNER[self._frame % len(SPINNER)] if self._symbols is UNICODE_SYMBOLS else None
            self._frame += 1
            lines = [run_line(run), *(step_line(step, self._symbols, spinner) for step in steps)]
            text = "\n".join(lines)
            erase = f"\x1b[{self._drawn_lines}F\x1b[J" if self._drawn_lines else ""
            self._out.write(erase + text + "\n")
            self._drawn_lines = text.count("\n") + 1
        else:
            for step in steps:  # a step's line again whenever its status or attempt changes
                state = (step.get("status"), step.get("attempts"))
                if self._printed.get(step["id"]) != state:
                    self._printed[step["id"]] = state
                    self._out.write(step_line(step, self._symbols) + "\n")
        self._out.flush()

    def finish(self, run: dict[str, Any]) -> None:
        if not self._interactive:
            self._out.write(run_line(run) + "\n")
        usage = run.get("usage") or {}
        summary = f"{run.get('steps_completed', 0)} steps completed, {usage.get('model_calls', 0)} model calls"
        tokens = _tokens(usage)
        self._out.write(f"{summary}{', ' + tokens + ' tokens' if tokens else ''}\n")
        if run.get("error"):
            self._out.write(f"error: {run['error'].get('error')}: {run['error'].get('cause') or ''}\n")
        self._out.flush()


def _wait(seconds: float) -> None:
    time.sleep(seconds)


def follow(client: ApiClient, run_id: str, out: TextIO, *, as_json: bool) -> int:
    display = None if as_json else LiveDisplay(out, interactive=out.isatty())
    while True:
        run = client.get(_run_path(run_id))
        steps = client.get(_run_path(run_id, "steps"))["steps"]
        if display:
            display.update(run, steps)
        if run["status"] in FINAL_STATUSES:
            if display:
                display.finish(run)
            else:
                _print_json({"run": run, "steps": steps}, out)
            return EXIT_OK if run["status"] == "SUCCEEDED" else EXIT_FAILED
        _wait(POLL_INTERVAL_SECONDS)


def _print_json(value: Any, out: TextIO) -> None:
    out.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def _print_run(run: dict[str, Any], out: TextIO) -> None:
    rows = [
        ("run", run["run_id"]),
        ("workflow", run["workflow"] + (f" (version {run['version']})" if run.get("version") else "")),
        ("status", run["status"]),
        ("created", run.get("created_at")),
        ("finished", run.get("finished_at")),
    ]
    if "usage" in run:
        rows.append(("steps", f"{run.get('steps_completed', 0)} completed"))
        rows.append(("tokens", f"{_tokens(run['usage'])} ({run['usage'].get('model_calls', 0)} model calls)"))
    if run.get("error"):
        rows.append(("error", f"{run['error'].get('error')}: {run['error'].get('cause') or ''}"))
    for name in ("output", "input"):
        if run.get(f"{name}_artifact"):
            artifact = run[f"{name}_artifact"]
            rows.append((name, f"{artifact['bytes']} bytes at {artifact['url']}"))
        elif run.get(name) is not None:
            text = json.dumps(run[name], ensure_ascii=False)
            rows.append((name, text if len(text) <= 500 else text[:500] + "…"))
    for label, value in rows:
        if value is not None:
            out.write(f"{label:<9} {value}\n")


# --- commands -----------------------------------------------------------------------------------


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
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    region = args.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region:
        raise CliError("no region: pass --region or set AWS_REGION", EXIT_USAGE)
    password = args.password if args.password is not None else getpass.getpass(f"Password for {args.username}: ")
    cognito = boto3.client("cognito-idp", region_name=region, endpoint_url=args.endpoint_url)
    try:
        response = cognito.initiate_auth(
            ClientId=args.user_pool_client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": args.username, "PASSWORD": password},
        )
    except ClientError as exc:
        raise CliError(f"login failed: {exc.response['Error'].get('Message') or exc}") from None
    except BotoCoreError as exc:
        raise CliError(f"login failed: {exc}") from None
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
        _print_json(run, out)
    else:
        out.write(f"{'started' if status == 201 else 'already started'} {run['run_id']} ({run['status']})\n")
    return EXIT_OK


def command_status(args: argparse.Namespace, client: ApiClient, out: TextIO) -> int:
    run = client.get(_run_path(args.run_id))
    if args.json:
        _print_json(run, out)
    else:
        _print_run(run, out)
    return EXIT_OK


def command_steps(args: argparse.Namespace, client: ApiClient, out: TextIO) -> int:
    steps = client.get(_run_path(args.run_id, "steps"))["steps"]
    if args.json:
        _print_json({"steps": steps}, out)
    else:
        symbols = _symbols(out)
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
        _print_json(page, out)
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
        _print_json(page, out)
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
        _print_json(approval, out)
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


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--api", help="the API's base URL, with its stage (env SUTRAM_API_URL)")
    common.add_argument("--token", help="a Cognito ID token (env SUTRAM_TOKEN)")
    common.add_argument("--json", action="store_true", help="print the API's JSON instead of text")

    parser = argparse.ArgumentParser(prog="sutram", description="Start and follow Sutram workflow runs.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    login = commands.add_parser("login", help="get an ID token from Cognito and save it", parents=[common])
    login.add_argument("--user-pool-client-id", required=True)
    login.add_argument("--username", required=True)
    login.add_argument("--password", help="prompted for when omitted")
    login.add_argument("--region", help="env AWS_REGION")
    login.add_argument("--endpoint-url", help="a Cognito endpoint other than AWS's, e.g. the local cloud's")

    run = commands.add_parser("run", help="start a run", parents=[common])
    run.add_argument("workflow")
    run.add_argument("--input", required=True, help="a JSON file, JSON text, or - for standard input")
    run.add_argument("--idempotency-key", help="retrying with the same key never starts a second run")
    run.add_argument("--follow", action="store_true", help="show the run's progress until it ends")
    run.add_argument("--version", type=int, help="a published version of the workflow (default: the live one)")

    for name, help_text in (("status", "show a run"), ("steps", "list a run's steps"), ("follow", "watch a run")):
        command = commands.add_parser(name, help=help_text, parents=[common])
        command.add_argument("run_id")

    validate = commands.add_parser("validate", help="check workflow definitions (no API needed)")
    validate.add_argument("paths", nargs="*", default=["workflows"], help="files or folders (default: workflows)")

    listing = commands.add_parser("runs", help="list runs, newest first", parents=[common])
    listing.add_argument("--workflow")
    listing.add_argument("--status", choices=["RUNNING", "SUCCEEDED", "FAILED"], type=str.upper)
    listing.add_argument("--limit", type=int, default=20)
    listing.add_argument("--cursor", help="the next_cursor of the previous page")

    approvals = commands.add_parser("approvals", help="list your tenant's approvals, newest first", parents=[common])
    approvals.add_argument(
        "--status", choices=["pending", "approved", "rejected", "expired", "escalated"], default="pending"
    )
    approvals.add_argument("--limit", type=int, default=20)
    approvals.add_argument("--cursor", help="the next_cursor of the previous page")

    approve = commands.add_parser("approve", help="approve an approval; the run continues", parents=[common])
    approve.add_argument("approval_id")
    approve.add_argument("--comment")
    approve.add_argument("--proposal", help="an edited proposal: a JSON file, JSON text, or - for standard input")
    reject = commands.add_parser("reject", help="reject an approval; the run continues", parents=[common])
    reject.add_argument("approval_id")
    reject.add_argument("--comment", required=True, help="why (recorded with the decision)")
    return parser


COMMANDS = {
    "run": command_run,
    "status": command_status,
    "steps": command_steps,
    "runs": command_runs,
    "follow": command_follow,
    "approvals": command_approvals,
    "approve": command_decide,
    "reject": command_decide,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = sys.stdout
    try:
        if args.command == "login":
            return command_login(args, out)
        if args.command == "validate":
            return command_validate(args, out)
        return COMMANDS[args.command](args, ApiClient(load_config(args)), out)
    except CliError as exc:
        sys.stderr.write(f"sutram: error: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("\n")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
