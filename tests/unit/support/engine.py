"""What the engine tests send the step runtime, as the state machine would, the tool their agents
look items up with, and faults injected into this process's step runtime."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from sutram.contracts import AgentTurnTask
from sutram.tools import ToolContext, tool

RUN = {"tenant": "acme", "run_id": "run-1", "workflow": "unit"}


class Item(BaseModel):
    item: str


@tool("unit_lookup_inventory")
def lookup_inventory(args: Item, context: ToolContext) -> dict[str, Any]:
    """How many of an item are in stock."""
    return {"item": args.item, "in_stock": 3}


def turn_event(step: dict[str, Any], turn: int, delivery: int = 0) -> AgentTurnTask:
    """Turn `turn` of the agent `step` of RUN, whose input's item is a widget."""
    return AgentTurnTask.model_validate(
        {"run": RUN, "step": step, "turn": turn, "delivery": delivery, "sources": {"input": {"item": "widget"}}}
    )


def set_faults(monkeypatch: Any, spec: str) -> None:
    """Like deploying with SUTRAM_FAULTS=spec: this process's step runtime crashes a step at a named
    point on its first attempt."""
    from sutram import wiring

    monkeypatch.setattr(wiring.step_runtime(), "faults", spec)
