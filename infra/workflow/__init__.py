"""Compile a workflow definition into a Step Functions Standard state machine.

    states.py       WorkflowStateMachine: the machine, and one state (or a few) per step type
    conditions.py   a `choice` step's conditions as ASL Choice rules
    agent.py        an `agent` step's loop of states
    approvals.py    an `approval` step's waiting task and its `on_timeout` paths
    payloads.py     the task payloads, one builder per sutram.contracts model
    lambda_task.py  the one builder of Lambda Tasks, and their retry policies

The names below are what the rest of the code imports.
"""

from infra.workflow.agent import agent_states
from infra.workflow.conditions import choice_rule
from infra.workflow.lambda_task import lease_wait_attempts
from infra.workflow.states import WorkflowStateMachine

__all__ = ["WorkflowStateMachine", "agent_states", "choice_rule", "lease_wait_attempts"]
