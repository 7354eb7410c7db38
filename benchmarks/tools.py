"""The benchmarks' tools. The benchmarks import this module, so that their workflow definitions
validate; their local cloud's sandboxes load it too (benchmarks/sandbox.py), so that the step
function can run them."""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel

from sutram.tools import ToolContext, tool

SLEEP_SECONDS = 1.0


class EchoArgs(BaseModel):
    value: Any = None


@tool("bench_echo")
def bench_echo(args: EchoArgs, context: ToolContext) -> dict[str, Any]:
    """A trivial step: returns a small value derived from its input."""
    return {
        "step": context.step_path,
        "previous": (args.value or {}).get("step") if isinstance(args.value, dict) else None,
    }


class SleepArgs(BaseModel):
    item: int


@tool("bench_sleep")
def bench_sleep(args: SleepArgs, context: ToolContext) -> dict[str, int]:
    """Sleeps one second, like a step waiting on a slow API."""
    time.sleep(SLEEP_SECONDS)
    return {"item": args.item}
