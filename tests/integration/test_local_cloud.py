"""The local cloud's one dependency on moto internals, and the template it is built from.

If a moto upgrade moves the Lambda backend or changes `invoke`, these tests fail with a message
that says so, instead of workflows silently returning moto's canned "Simple Lambda happy path".
"""

from __future__ import annotations

import inspect
import json

import boto3
from moto.awslambda_simple import models as lambda_simple

from localcloud.cloud import ACCOUNT, REGION
from tests.integration.support import wait_for_execution

SEAM = "moto.awslambda_simple.models.lambda_simple_backends[account][region].invoke"


def test_moto_still_has_the_lambda_backend_the_local_cloud_patches():
    assert hasattr(lambda_simple, "lambda_simple_backends"), f"moto moved {SEAM}: update localcloud/moto_patches.py"
    parameters = list(inspect.signature(lambda_simple.LambdaSimpleBackend.invoke).parameters)
    assert parameters == ["self", "function_name", "qualifier", "body", "headers", "response_headers"], (
        f"moto changed the signature of {SEAM}: update localcloud.moto_patches.install_invoke_seam"
    )


def test_a_state_machine_task_runs_the_real_handler_in_process(local_cloud):
    before = sum(local_cloud.invocations.values())
    local_cloud.add_function("SeamProbe", "tests.integration.test_local_cloud.probe_handler", {})
    sfn = boto3.client("stepfunctions")
    arn = sfn.create_state_machine(
        name="seam-probe",
        roleArn=local_cloud.role_arn,
        definition=json.dumps(
            {
                "StartAt": "Probe",
                "States": {
                    "Probe": {
                        "Type": "Task",
                        "Resource": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:SeamProbe",
                        "End": True,
                    }
                },
            }
        ),
    )["stateMachineArn"]

    execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps({"n": 20}))
    description = wait_for_execution(execution["executionArn"])

    assert description["status"] == "SUCCEEDED", f"{SEAM} no longer reaches the handler: {description}"
    assert json.loads(description["output"]) == {"doubled": 40}
    assert sum(local_cloud.invocations.values()) == before + 1


def test_a_handler_exception_reaches_step_functions_as_a_named_lambda_error(local_cloud):
    local_cloud.add_function("SeamFailure", "tests.integration.test_local_cloud.failing_handler", {})
    payload, error = local_cloud.invoke("SeamFailure", {})

    assert error == "Unhandled"
    assert payload["errorType"] == "ValueError" and payload["errorMessage"] == "bad input"


def test_the_state_machines_come_from_the_synthesized_template(local_cloud, template):
    synthesized = {
        resource["Properties"]["StateMachineName"]
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::StepFunctions::StateMachine"
    }
    assert set(local_cloud.state_machines) == synthesized
    listed = {m["name"] for m in boto3.client("stepfunctions").list_state_machines()["stateMachines"]}
    assert synthesized <= listed


def probe_handler(event, context):
    return {"doubled": event["n"] * 2}


def failing_handler(event, context):
    raise ValueError("bad input")
