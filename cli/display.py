"""What the `sutram` command prints: step and run lines, a run followed live until it ends, JSON and run details."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any, TextIO

from cli.client import ApiClient, run_path
from cli.errors import EXIT_FAILED, EXIT_OK

FINAL_STATUSES = ("SUCCEEDED", "FAILED")
POLL_INTERVAL_SECONDS = 0.5
SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
UNICODE_SYMBOLS = {"SUCCEEDED": "✓", "FAILED": "✗", "RUNNING": "●"}
ASCII_SYMBOLS = {"SUCCEEDED": "+", "FAILED": "x", "RUNNING": ">"}


def symbols_for(out: TextIO) -> dict[str, str]:
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
    if step.get("outcome_unknown"):
        line += (
            "\n    an at-most-once call started and recorded no outcome: check the target system, then "
            f"`sutram resolve RUN --step {step['id']} --record OUTPUT` or `--retry`, and `sutram resume RUN`"
        )
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
        self._symbols = symbols_for(out)
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
        run = client.get(run_path(run_id))
        steps = client.get(run_path(run_id, "steps"))["steps"]
        if display:
            display.update(run, steps)
        if run["status"] in FINAL_STATUSES:
            if display:
                display.finish(run)
            else:
                print_json({"run": run, "steps": steps}, out)
            return EXIT_OK if run["status"] == "SUCCEEDED" else EXIT_FAILED
        _wait(POLL_INTERVAL_SECONDS)


def print_json(value: Any, out: TextIO) -> None:
    out.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def next_actions(run: dict[str, Any]) -> str | None:
    """What an operator can do with a run in its status, as commands."""
    run_id, status = run["run_id"], run["status"]
    if status == "PAUSED":
        return (
            f"paused at {run.get('paused_step')}: `sutram resume {run_id}` runs it again, "
            f"`sutram abort {run_id} --reason TEXT` ends the run"
        )
    if status == "COMPENSATED":
        return f"its side effects were undone; `sutram fork {run_id} --step STEP` runs from a step in a new run"
    if status in ("FAILED", "ABORTED"):
        return (
            f"`sutram resume {run_id}` (after a fix: `--version N`) goes on from its checkpoints; "
            f"`sutram fork {run_id} --step STEP` runs from a step in a new run"
        )
    if status == "SUCCEEDED":
        return (
            f"`sutram fork {run_id} --step STEP` runs from a step again; "
            f"`sutram replay {run_id} --version N` checks a version against it"
        )
    return None


def print_run(run: dict[str, Any], out: TextIO) -> None:
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
    if run.get("forked_from"):
        rows.append(("forked", f"from {run['forked_from']['run_id']} at {run['forked_from']['step']}"))
    if run.get("replay_of"):
        rows.append(("replays", run["replay_of"]))
    if run.get("forks"):
        rows.append(("forks", ", ".join(run["forks"])))
    rows.append(("next", next_actions(run)))
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
