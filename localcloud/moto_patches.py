"""The local cloud's patches of moto internals (moto 5.2.5); LocalCloud.start() installs all three.

install_invoke_seam(dispatch): the Lambda backend's `invoke`, so that Lambda invocations (Step
    Functions' Lambda tasks among them) run the real handlers in the local cloud's sandboxes instead
    of returning moto's canned "Simple Lambda happy path".
    tests/integration/test_local_cloud.py fails loudly if moto moves or changes it.
start_executions_on_versions(): the Step Functions backend's `start_execution`, because moto publishes
    versions but cannot start an execution on one. tests/integration/test_versions.py.
start_executions_from_tasks(): the parameter casing of the startExecution task integration, which
    moto passes to boto3 as the ASL's. tests/integration/test_agents.py.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from moto.awslambda_simple.models import lambda_simple_backends
from moto.stepfunctions.exceptions import StateMachineDoesNotExist
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (
    StateTaskServiceSfn,
)
from moto.stepfunctions.responses import get_backend

# The account and region the local cloud's mock runs in: the backends patched here are theirs.
ACCOUNT = "123456789012"
REGION = "us-east-1"
# Held while an execution starts on a version (its definition is swapped in for that moment) and
# while the local cloud redeploys: neither sees the other's definitions half way.
DEFINITIONS = threading.RLock()


def install_invoke_seam(dispatch: Callable[[str, Any], tuple[Any, str | None]]) -> None:
    """Route every Lambda invocation to `dispatch(function name, event) -> (payload, function error or None)`."""
    backend = lambda_simple_backends[ACCOUNT][REGION]

    def invoke(function_name: str, qualifier: str | None, body: Any, headers: Any, response_headers: Any) -> bytes:
        payload, error = dispatch(function_name, json.loads(body or b"{}"))
        if error:
            response_headers["x-amz-function-error"] = error
        return json.dumps(payload).encode()

    backend.invoke = invoke  # type: ignore[method-assign]


def start_executions_on_versions() -> None:
    """Let StartExecution name a published version (`<state machine ARN>:<n>`), as AWS does.

    moto 5.2.5 publishes versions but starts executions only on a state machine's latest definition.
    Its execution copies the definition when it starts, so the version's definition is put in place
    for that moment: the execution runs that version to its end, whatever is deployed meanwhile. An
    unpublished version number is StateMachineDoesNotExist, as in AWS. Installed on the backend of
    the running mock (moto resets it when the mock stops).
    """
    backend = get_backend(ACCOUNT, REGION)
    start = backend.start_execution

    def start_execution(state_machine_arn: str, *args: Any, **kwargs: Any) -> Any:
        parts = state_machine_arn.split(":")
        if len(parts) != 8 or not parts[7].isdigit():  # arn:aws:states:region:account:stateMachine:name[:n]
            return start(state_machine_arn, *args, **kwargs)
        machine_arn = ":".join(parts[:7])
        machine = backend.describe_state_machine(machine_arn)
        version = machine.versions.get(int(parts[7]))
        if version is None:
            raise StateMachineDoesNotExist(f"State Machine Does Not Exist: '{state_machine_arn}'")
        with DEFINITIONS:
            latest, machine.definition = machine.definition, version.definition
            try:
                return start(machine_arn, *args, **kwargs)
            finally:
                machine.definition = latest

    backend.start_execution = start_execution  # type: ignore[method-assign]


def start_executions_from_tasks() -> None:
    """Let a Task state start an execution (`arn:aws:states:::states:startExecution`).

    moto 5.2.5 passes the task's parameters to boto3 in the ASL's casing (StateMachineArn), which
    boto3 rejects; they are renamed to the API's (stateMachineArn) after moto's own normalisation.
    Agent loops continue a long run in a fresh execution this way (tests/integration/test_agents.py).
    """
    normalise = StateTaskServiceSfn._normalise_parameters
    if getattr(normalise, "sutram_patched", False):
        return

    def normalise_parameters(self: Any, parameters: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        normalise(self, parameters, *args, **kwargs)
        if self._get_boto_service_action() == "start_execution":
            for key in [key for key in parameters if key[:1].isupper()]:
                parameters[key[0].lower() + key[1:]] = parameters.pop(key)

    normalise_parameters.sutram_patched = True  # type: ignore[attr-defined]
    StateTaskServiceSfn._normalise_parameters = normalise_parameters  # type: ignore[method-assign]
