"""The whole workflow: `WorkflowDefinition`, walking its nested steps, and the checks that ids
are unique and that every expression reads an output that exists when the step runs."""

from __future__ import annotations

from pydantic import Field, model_validator

from sutram import expressions
from sutram.definition.steps import (
    AgentStep,
    AnyStep,
    ApprovalStep,
    ChoiceStep,
    JsonSchema,
    LlmStep,
    MapStep,
    ParallelStep,
    Step,
    Strict,
    ToolStep,
    TransformStep,
    WaitStep,
)

WORKFLOW_NAME = r"^[a-z][a-z0-9-]{0,47}$"


def child_lists(step: AnyStep) -> list[tuple[str, list[AnyStep]]]:
    """A step's nested step lists with their location, e.g. ("choices[0].then", [...])."""
    if isinstance(step, ChoiceStep):
        lists = [(f"choices[{index}].then", list(branch.then)) for index, branch in enumerate(step.choices)]
        return lists + ([("otherwise", list(step.otherwise))] if step.otherwise else [])
    if isinstance(step, ParallelStep):
        return [(f"branches.{name}", list(steps)) for name, steps in step.branches.items()]
    if isinstance(step, MapStep):
        return [("steps", list(step.steps))]
    return []


def own_references(step: AnyStep) -> list[expressions.Reference]:
    """The expressions a step itself reads, not counting its nested steps."""
    if isinstance(step, LlmStep | ToolStep | AgentStep):
        return expressions.references_in(step.input)
    if isinstance(step, ApprovalStep):
        return expressions.references_in(step.input) + expressions.references_in(step.proposal)
    if isinstance(step, ChoiceStep):
        return [ref for branch in step.choices for ref in branch.when.references()]
    if isinstance(step, MapStep):
        return [expressions.parse(step.items)]
    if isinstance(step, WaitStep):
        return [expressions.parse(step.until)] if step.until else []
    if isinstance(step, TransformStep):
        return expressions.references_in(step.output)
    return []


def walk(steps: list[AnyStep]) -> list[AnyStep]:
    """Every step, nested ones included, in definition order."""
    found: list[AnyStep] = []
    for step in steps:
        found.append(step)
        for _, nested in child_lists(step):
            found += walk(nested)
    return found


def has_output(step: AnyStep) -> bool:
    """A wait passes the state through, and a choice without `otherwise` may run no branch at all."""
    return not isinstance(step, WaitStep) and not (isinstance(step, ChoiceStep) and not step.otherwise)


class WorkflowDefinition(Strict):
    name: str = Field(pattern=WORKFLOW_NAME)
    description: str = ""
    input_schema: JsonSchema | None = None  # a run's input is checked against it when the run starts
    steps: list[Step] = Field(min_length=1, max_length=500)

    @model_validator(mode="after")
    def _references_point_backwards(self) -> WorkflowDefinition:
        _check_sequence(list(self.steps), "steps", visible={}, in_map=False, in_branch=False, seen={})
        return self

    def roots_needed_by(self, step: AnyStep) -> list[str]:
        """The state roots (`input`, `item`, `steps.<id>`) a step's own expressions read, in order."""
        return list(dict.fromkeys(ref.root for ref in own_references(step)))

    def compensated_steps(self) -> list[ToolStep]:
        """The tool steps with a compensation, in definition order (none is inside a map or a parallel)."""

        def visit(steps: list[AnyStep]) -> list[ToolStep]:
            found: list[ToolStep] = []
            for step in steps:
                if isinstance(step, ToolStep) and step.compensate is not None:
                    found.append(step)
                if isinstance(step, ChoiceStep):
                    for _, nested in child_lists(step):
                        found += visit(nested)
            return found

        return visit(list(self.steps))

    def outputs_read_later(self) -> set[str]:
        """Ids of steps whose output a later step reads, plus the last step (the run's output)."""
        read = {ref.step_id for step in walk(list(self.steps)) for ref in own_references(step)}
        return {step_id for step_id in read if step_id} | {self.steps[-1].id}


def roots_from_outside(steps: list[AnyStep]) -> list[str]:
    """The roots that nested `steps` read from the state around them: what a map copies into each
    iteration. Outputs of steps inside, and the map's own `item`, are not among them."""
    inside = walk(steps)
    defined = {f"steps.{step.id}" for step in inside}
    roots = [ref.root for step in inside for ref in own_references(step)]
    return [root for root in dict.fromkeys(roots) if root not in defined and root != "item"]


_EXPRESSION_FIELDS = {
    "llm": "input",
    "tool": "input",
    "agent": "input",
    "approval": "input",
    "choice": "choices",
    "map": "items",
    "wait": "until",
    "transform": "output",
}


def _check_sequence(
    steps: list[AnyStep],
    location: str,
    *,
    visible: dict[str, AnyStep],
    in_map: bool,
    in_branch: bool,
    seen: dict[str, str],
) -> None:
    """Ids are unique; a step reads only outputs that always exist when it runs: earlier steps of
    its own list or of the lists around it. A step inside a branch or a map is read from outside
    through its container's output. `seen` maps every id met so far to the outermost container
    it is inside of, as seen from the list being checked ("" for a step of that list)."""
    visible = dict(visible)
    for index, step in enumerate(steps):
        where = f"step {step.id!r} ({location}[{index}])"
        if step.id in seen:
            raise ValueError(f"{where}, field 'id': step id {step.id!r} is used twice")
        if getattr(step, "on_error", None) is not None and (in_map or in_branch):
            raise ValueError(f"{where}, field 'on_error': only a step outside any map or parallel can pause the run")
        if isinstance(step, ToolStep) and step.compensate is not None:
            if in_map or in_branch:
                raise ValueError(f"{where}, field 'compensate': only a step outside any map or parallel has one")
            for ref in expressions.references_in(step.compensate.input):
                if ref.root == "item" or (ref.step_id is not None and ref.step_id != step.id):
                    _check_reference(ref, f"{where}, field 'compensate.input'", visible, in_map, seen)
        if isinstance(step, MapStep) and step.distributed and (in_map or in_branch):
            # CDK grants the state machine the right to start child executions only for a
            # Distributed Map in its top-level graph (aws/aws-cdk#29266).
            raise ValueError(f"{where}, field 'distributed': a distributed map cannot be inside a map or a parallel")
        for ref in own_references(step):
            _check_reference(ref, f"{where}, field {_EXPRESSION_FIELDS[step.type]!r}", visible, in_map, seen)
        seen[step.id] = ""
        for child_location, nested in child_lists(step):
            before = set(seen)
            _check_sequence(
                nested,
                f"{location}[{index}].{child_location}",
                visible=visible,
                in_map=in_map or isinstance(step, MapStep),
                in_branch=in_branch or isinstance(step, ParallelStep),
                seen=seen,
            )
            seen.update({step_id: step.id for step_id in set(seen) - before})
        if index == len(steps) - 1 and not has_output(step):
            raise ValueError(
                f"{where}: the last step of a list gives its output to the run or its container, so it "
                "cannot be a wait or a choice without 'otherwise'"
            )
        visible[step.id] = step


def _check_reference(
    ref: expressions.Reference, where: str, visible: dict[str, AnyStep], in_map: bool, seen: dict[str, str]
) -> None:
    if ref.root == "item" and not in_map:
        raise ValueError(f"{where}: reads $.item outside a map")
    if ref.step_id is None:
        return
    if ref.step_id in visible:
        if not has_output(visible[ref.step_id]):
            raise ValueError(
                f"{where}: reads $.steps.{ref.step_id}, which has no output (a wait, or a choice without 'otherwise')"
            )
        return
    container = seen.get(ref.step_id)
    if container:
        raise ValueError(
            f"{where}: reads $.steps.{ref.step_id}, which runs inside {container!r}; "
            f"read {container!r}'s output instead"
        )
    raise ValueError(f"{where}: reads $.steps.{ref.step_id}, which is not an earlier step")
