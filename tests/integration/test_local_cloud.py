"""The local cloud: its one dependency on moto internals, the template it is built from, and the
sandboxes that run the Lambda code as Lambda does (from the asset, with the template's handler and
environment, warm, concurrent, failing with Lambda's errors).

If a moto upgrade moves the Lambda backend or changes `invoke`, the first test fails with a message
that says so, instead of workflows silently returning moto's canned "Simple Lambda happy path".
"""

from __future__ import annotations

import inspect
import json
import os
import threading
from pathlib import Path

import boto3
import pytest
from moto.awslambda_simple import models as lambda_simple

from localcloud.cloud import ACCOUNT, REGION, LocalCloud
from sutram.store.signing_keys import SigningKeys
from tests.integration.support import wait_for_execution

SEAM = "moto.awslambda_simple.models.lambda_simple_backends[account][region].invoke"
LAMBDAS = "tests.integration.lambdas"


def _added(cloud: LocalCloud, name: str, handler: str, **options) -> str:
    if name not in cloud.functions:
        cloud.add_function(name, f"{LAMBDAS}.{handler}", {"PROBE_SET": "yes"}, **options)
    return name


def test_moto_still_has_the_lambda_backend_the_local_cloud_patches():
    assert hasattr(lambda_simple, "lambda_simple_backends"), f"moto moved {SEAM}: update localcloud/moto_patches.py"
    parameters = list(inspect.signature(lambda_simple.LambdaSimpleBackend.invoke).parameters)
    assert parameters == ["self", "function_name", "qualifier", "body", "headers", "response_headers"], (
        f"moto changed the signature of {SEAM}: update localcloud.moto_patches.install_invoke_seam"
    )


def test_a_state_machine_task_runs_the_handler_in_a_sandbox_of_its_own(local_cloud):
    before = sum(local_cloud.invocations.values())
    _added(local_cloud, "SeamProbe", "probe")
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
    output = json.loads(description["output"])
    assert output["doubled"] == 40 and output["function"] == "SeamProbe"
    assert output["pid"] != os.getpid()  # not this process
    assert 0 < output["remaining_ms"] <= 60_000
    # Its own environment, not this process's (which has every SUTRAM_ variable of the template).
    assert output["variables"] == ["PROBE_SET"] and "SUTRAM_TABLE" in os.environ
    assert sum(local_cloud.invocations.values()) == before + 1


def test_a_warm_sandbox_is_reused(local_cloud):
    _added(local_cloud, "SeamProbe", "probe")
    first, _ = local_cloud.invoke("SeamProbe", {"n": 1})
    second, _ = local_cloud.invoke("SeamProbe", {"n": 2})
    assert first["pid"] == second["pid"]


def test_invocations_run_side_by_side_in_as_many_sandboxes(local_cloud):
    _added(local_cloud, "Sleeper", "sleeping")
    answers = []

    def invoke():
        answers.append(local_cloud.invoke("Sleeper", {"seconds": 1.5}))

    threads = [threading.Thread(target=invoke) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [error for _, error in answers] == [None] * 3
    assert len({payload["pid"] for payload, _ in answers}) == 3


def test_a_handler_exception_reaches_step_functions_as_a_named_lambda_error(local_cloud):
    _added(local_cloud, "SeamFailure", "failing")
    payload, error = local_cloud.invoke("SeamFailure", {})

    assert error == "Unhandled"
    assert payload["errorType"] == "ValueError" and payload["errorMessage"] == "bad input"


def test_a_runtime_that_exits_is_a_runtime_exit_error_and_the_next_invocation_gets_a_new_sandbox(local_cloud):
    _added(local_cloud, "Exiting", "exiting")
    payload, error = local_cloud.invoke("Exiting", {})

    assert error == "Unhandled" and payload["errorType"] == "Runtime.ExitError"
    assert payload["errorMessage"].endswith("Error: Runtime exited with error: exit status 3")
    assert local_cloud.invoke("Exiting", {})[0]["errorType"] == "Runtime.ExitError"


def test_a_handler_past_its_timeout_is_killed_with_sandbox_timedout(local_cloud):
    _added(local_cloud, "Slow", "sleeping", timeout_seconds=1)
    payload, error = local_cloud.invoke("Slow", {"seconds": 30})

    assert error == "Unhandled" and payload["errorType"] == "Sandbox.Timedout"
    assert payload["errorMessage"].endswith("Task timed out after 1.00 seconds")
    assert local_cloud.invoke("Slow", {"seconds": 0})[0]["slept"] == 0


def test_a_result_lambda_cannot_serialize_is_a_marshal_error(local_cloud):
    _added(local_cloud, "Unserializable", "unserializable")
    payload, error = local_cloud.invoke("Unserializable", {})
    assert error == "Unhandled" and payload["errorType"] == "Runtime.MarshalError"


@pytest.mark.parametrize(
    ("handler", "error_type", "message"),
    [
        (f"{LAMBDAS}.missing", "Runtime.HandlerNotFound", f"Handler 'missing' missing on module '{LAMBDAS}'"),
        ("sutram_nowhere.handler", "Runtime.ImportModuleError", "Unable to import module 'sutram_nowhere'"),
        ("handler", "Runtime.MalformedHandlerName", "Bad handler 'handler'"),
    ],
)
def test_a_handler_string_that_points_nowhere_fails_every_invocation_as_lambda_reports_it(
    local_cloud, handler, error_type, message
):
    name = f"Nowhere{error_type.split('.')[1]}"
    local_cloud.add_function(name, handler, {})
    payload, error = local_cloud.invoke(name, {})
    assert error == "Unhandled" and payload["errorType"] == error_type
    assert payload["errorMessage"].startswith(message)


def test_a_module_missing_from_the_asset_fails_even_though_this_machine_has_it(local_cloud, tmp_path: Path):
    """The sandbox's path is the asset and the runtime's packages: the repository's sources, which
    this process imports, are not on it."""
    (tmp_path / "lonely.py").write_text("import sutram.wiring\n\ndef handler(event, context):\n    return 1\n")
    local_cloud.add_function("Lonely", "lonely.handler", {}, code=(tmp_path,))
    payload, error = local_cloud.invoke("Lonely", {})
    assert error == "Unhandled" and payload["errorType"] == "Runtime.ImportModuleError"
    assert "No module named 'sutram'" in payload["errorMessage"]


def test_the_template_functions_run_from_the_asset_with_the_template_environment(local_cloud, assembly):
    step = local_cloud.function_named("sutram.handlers.step.handler")
    environment = local_cloud.sandbox_environment(step)

    assert step.code[0].parent == assembly  # the staged asset, not functions/
    assert (step.code[0] / "sutram" / "handlers" / "step.py").is_file()
    assert environment["SUTRAM_WORKFLOWS_DIR"] == str(step.code[0] / "workflows")  # /var/task/workflows
    assert environment["_HANDLER"] == "sutram.handlers.step.handler"
    assert environment["AWS_ENDPOINT_URL"] == local_cloud.endpoint
    assert set(step.environment) <= set(environment)


def test_faults_injected_for_one_run_reach_only_that_run_s_sandboxes(local_cloud):
    _added(local_cloud, "SeamProbe", "probe")
    local_cloud.inject_faults("s@before_call", run_id="r-drilled")
    try:
        drilled, _ = local_cloud.invoke("SeamProbe", {"n": 1, "run": {"run_id": "r-drilled"}})
        other, _ = local_cloud.invoke("SeamProbe", {"n": 1, "run": {"run_id": "r-other"}})
    finally:
        local_cloud.inject_faults("", run_id="r-drilled")
    after, _ = local_cloud.invoke("SeamProbe", {"n": 1, "run": {"run_id": "r-drilled"}})

    assert drilled["drill"] == "s@before_call" and other["drill"] == "" and after["drill"] == ""
    assert drilled["pid"] != other["pid"]


def test_the_state_machines_come_from_the_synthesized_template(local_cloud, template):
    synthesized = {
        resource["Properties"]["StateMachineName"]
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::StepFunctions::StateMachine"
    }
    assert set(local_cloud.state_machines) == synthesized
    listed = {m["name"] for m in boto3.client("stepfunctions").list_state_machines()["stateMachines"]}
    assert synthesized <= listed


def test_secrets_manager_rotates_the_link_keys_through_the_template_s_rotation_function(local_cloud):
    rotate = local_cloud.function_named("sutram.handlers.rotate.handler")
    secret = local_cloud.function_named("sutram.handlers.api.handler").environment["SUTRAM_CALLBACK_SECRET_ARN"]
    client = boto3.client("secretsmanager")
    before = SigningKeys(client, secret, max_age=0).current()
    invoked = local_cloud.invocations[rotate.name]

    client.rotate_secret(SecretId=secret, RotationLambdaARN=rotate.arn, RotationRules={"AutomaticallyAfterDays": 30})

    keys = SigningKeys(client, secret, max_age=0).accepted()
    assert keys[1:] == (before,) and keys[0] != before
    assert local_cloud.invocations[rotate.name] == invoked + 4  # createSecret, setSecret, testSecret, finishSecret
