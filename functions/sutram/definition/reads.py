"""What Step Functions reads itself, so that an offloaded value keeps those parts in state.

Lambda tasks load artifact references back wherever they meet one. The states that run without a
Lambda cannot: a choice compares `$.steps.classify.label`, a wait reads its `until`, a transform
copies `$.input.customer.name`, an inline map iterates `$.input.documents`. When the value under
such a path is offloaded, those parts are kept next to its reference (sutram.store.artifacts):

    {"$artifact": "tenants/t/artifacts/sha256/….json", "$bytes": 90210, "label": "refund"}

`kept_paths` tells each producer which parts to keep: the run's input (`"input"`), each `llm`,
`tool` and `agent` step (by id), and each distributed map's staged items (`"items:<map id>"`,
paths inside one item). A path is a tuple of field names, with `"*"` for every element of a list
an inline map iterates. A read through a container's output is followed to the steps that produce
it: `$.steps.route.label`, where `route` is a choice, keeps `label` in the last step of each of
its branches; `$.steps.analyse[0].score` keeps `score` in the last step of the map `analyse`;
`$.steps.pick.name`, where `pick` is a transform of `{name: $.input.customer.name}`, keeps
`customer.name` in the input. A list index (`[0]`) reads as `*`: the list stays a list in state,
each element keeping that part.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from sutram import expressions
from sutram.definition.steps import (
    AgentStep,
    AnyStep,
    ChoiceStep,
    LlmStep,
    MapStep,
    ParallelStep,
    ToolStep,
    TransformStep,
    WaitStep,
)
from sutram.definition.workflow import WorkflowDefinition, child_lists, walk

Path = tuple[str, ...]
EVERY = "*"  # every element of a list
_Source = tuple[str, Path]  # a producer's root ("input", "steps.<id>", "items:<map id>") and a path in it


def kept_paths(definition: WorkflowDefinition) -> dict[str, list[Path]]:
    """Producer ("input", a step id, or "items:<map id>") -> the paths its value keeps in state."""
    by_id = {step.id: step for step in walk(list(definition.steps))}
    kept: dict[str, set[Path]] = defaultdict(set)
    item_at: dict[str, _Source | None] = {}  # step id -> where `$.item` comes from for it

    def want(root: str, path: Path, item: _Source | None, depth: int = 0) -> None:
        if root == "item":
            if item is not None:
                want(*_element(item, path), None, depth)
        elif root.startswith("steps."):
            if depth <= len(by_id):  # a transform of a transform of ...: finite, but bounded anyway
                produced_by(by_id[root.split(".", 1)[1]], path, depth + 1)
        else:  # "input" or "items:<map id>"
            kept[root].add(path)

    def produced_by(step: AnyStep, path: Path, depth: int) -> None:
        if isinstance(step, LlmStep | ToolStep | AgentStep):
            kept[step.id].add(path)
        elif isinstance(step, ChoiceStep):
            for _, steps in child_lists(step):
                produced_by(steps[-1], path, depth)
        elif isinstance(step, ParallelStep) and path and path[0] in step.branches:
            produced_by(step.branches[path[0]][-1], path[1:], depth)
        elif isinstance(step, MapStep) and path and path[0] == EVERY:
            produced_by(step.steps[-1], path[1:], depth)
        elif isinstance(step, TransformStep) and path:
            value: object = step.output.get(path[0])
            rest = path[1:]
            while isinstance(value, dict) and rest:
                value, rest = value.get(rest[0]), rest[1:]
            if expressions.is_expression(value):
                ref = expressions.parse(str(value))
                want(ref.root, _path(ref.path) + rest, item_at[step.id], depth)

    def visit(steps: list[AnyStep], item: _Source | None) -> None:
        for step in steps:
            item_at[step.id] = item
            for ref, whole in _state_reads(step):
                want(ref.root, _path(ref.path) + ((EVERY,) if whole else ()), item)
            if isinstance(step, MapStep):
                items = expressions.parse(step.items)
                if step.distributed:
                    inner: _Source | None = (f"items:{step.id}", ())
                elif items.root == "item":
                    inner = None if item is None else _element(item, _path(items.path))
                else:
                    inner = (items.root, _path(items.path))
                visit(list(step.steps), inner)
            else:
                for _, nested in child_lists(step):
                    visit(nested, item)

    visit(list(definition.steps), None)
    kept_parts = {name: sorted(path for path in paths if path) for name, paths in kept.items()}
    return {name: paths for name, paths in kept_parts.items() if paths}


def _element(item: _Source, path: Path) -> _Source:
    """`$.item` + `path` as a path into the list the map iterates: every element's `path`. A
    distributed map's staged items are kept one by one, so their paths start inside the item."""
    root, list_path = item
    return (root, path) if root.startswith("items:") else (root, (*list_path, EVERY, *path))


def _state_reads(step: AnyStep) -> Iterable[tuple[expressions.Reference, bool]]:
    """The expressions Step Functions evaluates itself for a step; True for an inline map's list,
    which stays a list with each element kept."""
    if isinstance(step, ChoiceStep):
        return [(ref, False) for branch in step.choices for ref in branch.when.references()]
    if isinstance(step, WaitStep) and step.until:
        return [(expressions.parse(step.until), False)]
    if isinstance(step, TransformStep):
        return [(ref, False) for ref in expressions.references_in(step.output)]
    if isinstance(step, MapStep) and not step.distributed:
        return [(expressions.parse(step.items), True)]
    return []


def _path(segments: tuple[str | int, ...]) -> Path:
    """An expression's path with list indexes as `*`: a part kept in one element is kept in each."""
    return tuple(EVERY if isinstance(segment, int) else segment for segment in segments)
