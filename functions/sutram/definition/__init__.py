"""Workflow definitions: the pydantic model of a workflow file and its loader.

A definition is the single source of truth. `infra.workflow` compiles it to Amazon States
Language; the step runtime receives each step's spec inside its task payload, so a running
execution always uses the definition its state machine was built from.
"""

from sutram.definition.loader import DefinitionError, load_all, load_definition, parse_definition
from sutram.definition.steps import (
    STEP_ID,
    AgentLimits,
    AgentStep,
    AgentTool,
    AnyStep,
    ApprovalRules,
    ApprovalStep,
    ChoiceBranch,
    ChoiceStep,
    Compensation,
    Condition,
    LlmStep,
    MapStep,
    ModelSpec,
    OnError,
    ParallelStep,
    RetryPolicy,
    Step,
    TaskStep,
    ToolStep,
    TransformStep,
    WaitStep,
    render_template,
)
from sutram.definition.workflow import (
    WORKFLOW_NAME,
    WorkflowDefinition,
    child_lists,
    has_output,
    own_references,
    roots_from_outside,
    walk,
)

__all__ = [
    "STEP_ID",
    "WORKFLOW_NAME",
    "AgentLimits",
    "AgentStep",
    "AgentTool",
    "AnyStep",
    "ApprovalRules",
    "ApprovalStep",
    "ChoiceBranch",
    "ChoiceStep",
    "Compensation",
    "Condition",
    "DefinitionError",
    "LlmStep",
    "MapStep",
    "ModelSpec",
    "OnError",
    "ParallelStep",
    "RetryPolicy",
    "Step",
    "TaskStep",
    "ToolStep",
    "TransformStep",
    "WaitStep",
    "WorkflowDefinition",
    "child_lists",
    "has_output",
    "load_all",
    "load_definition",
    "own_references",
    "parse_definition",
    "render_template",
    "roots_from_outside",
    "walk",
]
