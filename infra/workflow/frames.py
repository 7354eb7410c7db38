"""Where each step's output lives in a run's state: a few reused slots, not one entry per step.

A value stays in state only from the step that writes it to the last step that reads it. Two
values whose lives do not overlap share a slot (`$.slots.s0`, `$.slots.s1`, ...), so the state
carried between steps is as large as the values alive at once, however long the workflow: a chain
of 400 steps, each reading the one before, carries two slots. This is interval colouring, done
once when compiling; Step Functions never runs an extra state to drop a value.

A frame is one state document: the top level of a run (with its choice and parallel branches,
which run on the same document or on a copy of it), or one map iteration, whose ItemSelector
builds a fresh document holding only what the iteration reads from outside (`seed`).

Positions follow the definition order. A step reads at its position `p` and writes at `p + ½`,
so a value may take the slot of one its writer was the last to read. A container (choice, map,
parallel) writes after the last step inside it; an agent's turn loop, and where a distributed map
stages its list, live in a slot of their own from `p - ½` to `p + ½`, overlapping everything the
step reads.

Tasks never see slots: their payloads name each source by its step (`sources.steps.<id>`), so
execution history and the Lambdas keep the definition's vocabulary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from aws_cdk import aws_stepfunctions as sfn

from sutram import expressions
from sutram.definition import (
    AgentStep,
    AnyStep,
    MapStep,
    child_lists,
    own_references,
    roots_from_outside,
)

SLOTS_ROOT = "$.slots"
_END = math.inf  # the run's output is read by RecordSuccess, after every step


@dataclass
class _Life:
    start: float
    end: float = -math.inf


@dataclass
class Frame:
    """The slots of one state document. `steps` is its top-level list. For a map iteration
    (`iteration`), `outside` lists the roots it copies in (`roots_from_outside`), alive from its
    start, and its last step's output is the iteration's, not a slot's."""

    steps: list[AnyStep]
    outside: list[str] = field(default_factory=list)
    iteration: bool = False
    _slots: dict[str, str] = field(init=False, default_factory=dict)  # "steps.<id>" or "loop.<id>" -> slot

    def __post_init__(self) -> None:
        lives: dict[str, _Life] = {root: _Life(-1.0) for root in self.outside if root.startswith("steps.")}
        position = 0

        def read(root: str, at: float) -> None:
            if root in lives:
                lives[root].end = max(lives[root].end, at)

        def visit(steps: list[AnyStep], owns_last: bool) -> None:
            nonlocal position
            for index, step in enumerate(steps):
                at = float(position)
                position += 1
                for ref in own_references(step):
                    read(ref.root, at)
                if isinstance(step, MapStep):
                    for root in roots_from_outside(list(step.steps)):
                        read(root, at)
                if isinstance(step, AgentStep):
                    lives[f"loop.{step.id}"] = _Life(at - 0.5, at + 0.5)
                if isinstance(step, MapStep) and step.distributed:  # where its list is staged
                    lives[f"items.{step.id}"] = _Life(at - 0.5, at + 0.5)
                if not isinstance(step, MapStep):  # a map's steps are a frame of their own
                    for _, nested in child_lists(step):
                        visit(nested, owns_last=False)
                # The last step of a branch writes where its container's output goes.
                if owns_last or index < len(steps) - 1:
                    lives[f"steps.{step.id}"] = _Life(position - 0.5)

        visit(self.steps, owns_last=not self.iteration)
        if not self.iteration:
            read(f"steps.{self.steps[-1].id}", _END)
        self._allocate(lives)

    def _allocate(self, lives: dict[str, _Life]) -> None:
        ends: list[float] = []  # per slot, when its current value is last read
        for name, life in sorted(lives.items(), key=lambda item: item[1].start):
            if life.end < life.start and name.startswith("steps."):
                continue  # never read: the step's result is discarded
            free = next((slot for slot, end in enumerate(ends) if end < life.start), None)
            if free is None:
                ends.append(life.end)
                free = len(ends) - 1
            ends[free] = life.end
            self._slots[name] = f"s{free}"

    @property
    def slot_count(self) -> int:
        return len(set(self._slots.values()))

    def _slot_path(self, name: str) -> str:
        return f"{SLOTS_ROOT}.{self._slots[name]}"

    def result_path(self, step: AnyStep) -> str:
        """Where a step writes its output: its slot, or nowhere when nothing reads it."""
        name = f"steps.{step.id}"
        return self._slot_path(name) if name in self._slots else sfn.JsonPath.DISCARD

    def loop_path(self, step: AgentStep) -> str:
        """The agent's turn loop state ({turn, first_turn, done, tool_calls, result, ...})."""
        return self._slot_path(f"loop.{step.id}")

    def items_path(self, step: MapStep) -> str:
        """Where a distributed map's staging task writes {bucket, key, count}."""
        return self._slot_path(f"items.{step.id}")

    def path(self, expression: str) -> str:
        """A definition expression as a path into this frame's state: `$.steps.<id>.<rest>` reads
        the step's slot; `$.input` and `$.item` are where they are."""
        ref = expressions.parse(expression)
        if ref.step_id is None:
            return expression
        rest = expression[len(f"$.steps.{ref.step_id}") :]
        return self._slot_path(ref.root) + rest

    def sources(self, roots: list[str]) -> dict[str, object]:
        """A task's `sources` (contracts._Sourced): `.$` paths copying the roots it reads, named by
        step id: {"input.$": "$.input", "steps": {"extract.$": "$.slots.s1"}}."""
        copied: dict[str, object] = {f"{root}.$": f"$.{root}" for root in roots if not root.startswith("steps.")}
        steps = {f"{root.split('.', 1)[1]}.$": self._slot_path(root) for root in roots if root.startswith("steps.")}
        return copied | ({"steps": steps} if steps else {})

    def seed(self, inner: Frame) -> dict[str, object]:
        """ItemSelector entries that copy what the iteration frame `inner` reads from this one."""
        copied: dict[str, object] = {
            f"{root}.$": f"$.{root}" for root in inner.outside if not root.startswith("steps.") and root != "item"
        }
        slots = {
            f"{inner._slots[root]}.$": self._slot_path(root)
            for root in inner.outside
            if root.startswith("steps.") and root in inner._slots
        }
        return copied | ({"slots": slots} if slots else {})
