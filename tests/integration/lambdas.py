"""Handlers the integration tests add to the local cloud (LocalCloud.add_function). They run in the
cloud's sandboxes, from this repository's sources, so they live apart from the test modules."""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from pydantic import BaseModel

from sutram.contracts import parse_task
from sutram.handlers.step import dispatch
from sutram.tools import ToolContext, tool


class Item(BaseModel):
    item: str


@tool("it_lookup_inventory")
def lookup_inventory(args: Item, context: ToolContext) -> dict[str, Any]:
    """How many of an item are in stock."""
    return {"item": args.item, "in_stock": 3}


def agent_step(event: dict[str, Any], context: Any) -> Any:
    """The step Lambda's dispatch, without its metrics wrapper, with the tool above registered."""
    return dispatch(parse_task(event))


def probe(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """What the sandbox looks like from inside."""
    return {
        "doubled": event["n"] * 2,
        "pid": os.getpid(),
        "function": context.function_name,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "variables": sorted(name for name in os.environ if name.startswith(("PROBE_", "SUTRAM_"))),
        "drill": os.environ.get("SUTRAM_FAULTS", ""),
    }


def failing(event: dict[str, Any], context: Any) -> Any:
    raise ValueError("bad input")


def exiting(event: dict[str, Any], context: Any) -> Any:
    sys.exit(3)


def sleeping(event: dict[str, Any], context: Any) -> dict[str, Any]:
    time.sleep(event["seconds"])
    return {"slept": event["seconds"], "pid": os.getpid()}


def unserializable(event: dict[str, Any], context: Any) -> Any:
    return {"when": time}
