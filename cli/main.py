"""The `sutram` command: log in, start and follow runs, list runs and steps, decide approvals via the HTTP API.

This module parses the command line and dispatches to the subcommands in cli.commands; exit codes are
in cli.errors. Only the standard library is used, and for `login` boto3 and pycognito (Cognito's
SRP sign-in).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from cli.client import ApiClient
from cli.commands import (
    command_approvals,
    command_decide,
    command_follow,
    command_login,
    command_recover,
    command_replay,
    command_run,
    command_runs,
    command_status,
    command_steps,
    command_validate,
)
from cli.config import load_config
from cli.errors import EXIT_INTERRUPTED, CliError


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--api", help="the API's base URL, with its stage (env SUTRAM_API_URL)")
    common.add_argument("--token", help="a Cognito ID token (env SUTRAM_TOKEN)")
    common.add_argument("--json", action="store_true", help="print the API's JSON instead of text")

    parser = argparse.ArgumentParser(prog="sutram", description="Start and follow Sutram workflow runs.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    login = commands.add_parser("login", help="get an ID token from Cognito and save it", parents=[common])
    login.add_argument("--user-pool-id", required=True, help="e.g. eu-west-1_AbCdEf123 (the stack's UserPoolId)")
    login.add_argument("--user-pool-client-id", required=True)
    login.add_argument("--username", required=True)
    login.add_argument("--password", help="prompted for when omitted")
    login.add_argument("--mfa-code", help="the authenticator app's code, prompted for when Cognito asks and omitted")
    login.add_argument("--region", help="the user pool's region by default")
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
    statuses = ["RUNNING", "PAUSED", "SUCCEEDED", "FAILED", "COMPENSATED", "ABORTED"]
    listing.add_argument("--status", choices=statuses, type=str.upper)
    listing.add_argument("--limit", type=int, default=20)
    listing.add_argument("--cursor", help="the next_cursor of the previous page")

    resume = commands.add_parser("resume", help="resume a failed or aborted run from its checkpoints", parents=[common])
    resume.add_argument("run_id")
    resume.add_argument("--version", type=int, help="the live version, after a fix (default: the run's own)")
    abort = commands.add_parser("abort", help="stop a running run", parents=[common])
    abort.add_argument("run_id")
    abort.add_argument("--reason", required=True, help="why (recorded as the run's error)")
    fork = commands.add_parser("fork", help="a new run reusing every step before --step", parents=[common])
    fork.add_argument("run_id")
    fork.add_argument("--step", required=True, help="the top-level step to run again from")
    fork.add_argument("--outputs", help="recorded outputs to replace, {step path: value}: a JSON file, text or -")
    resolve = commands.add_parser(
        "resolve", help="settle an at-most-once call of unknown outcome, then resume", parents=[common]
    )
    resolve.add_argument("run_id")
    resolve.add_argument("--step", required=True, help="the step's path, as `sutram steps` lists it")
    settle = resolve.add_mutually_exclusive_group(required=True)
    settle.add_argument("--record", metavar="OUTPUT", help="it happened: its output, a JSON file, text or -")
    settle.add_argument("--retry", action="store_true", help="it did not happen: allow one more call")

    replay = commands.add_parser(
        "replay", help="replay ended runs on a version against their recorded results", parents=[common]
    )
    replay.add_argument("run_id", nargs="?", help="one run; or --workflow and --last for a batch")
    replay.add_argument("--version", type=int, help="the version to replay on (default: each run's own)")
    replay.add_argument("--workflow", help="replay this workflow's last ended runs")
    replay.add_argument("--last", type=int, default=10, help="how many (with --workflow)")
    replay.add_argument("--timeout", type=float, default=900, help="seconds to wait for the replays")

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
    "resume": command_recover,
    "abort": command_recover,
    "fork": command_recover,
    "resolve": command_recover,
    "replay": command_replay,
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
