"""The four functions: one code asset, Python 3.14 (the newest Lambda runtime), traced, configured
and least-privileged; the link-signing keys read at run time and rotated."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Match, Template

from infra import constants
from infra.functions import RuntimeConfig, SutramFunctions
from tests.infra.support import joined, role_statements, statement_actions

HANDLERS = {
    constants.STEP_FUNCTION_ID: ("sutram.handlers.step.handler", constants.STEP_FUNCTION_TIMEOUT),
    constants.FINISH_FUNCTION_ID: ("sutram.handlers.finish.handler", constants.FINISH_FUNCTION_TIMEOUT),
    constants.API_FUNCTION_ID: ("sutram.handlers.api.handler", constants.API_FUNCTION_TIMEOUT),
    constants.ROTATE_FUNCTION_ID: ("sutram.handlers.rotate.handler", constants.ROTATE_FUNCTION_TIMEOUT),
}


def _actions(statements: list[dict[str, Any]]) -> set[str]:
    return {action for statement in statements for action in statement_actions(statement)}


def test_exactly_four_functions_share_one_code_asset(template: dict[str, Any]) -> None:
    functions = Template.from_json(template).find_resources("AWS::Lambda::Function")
    assert set(functions) == set(HANDLERS)
    assert len({json.dumps(f["Properties"]["Code"], sort_keys=True) for f in functions.values()}) == 1


@pytest.mark.parametrize("function_id", list(HANDLERS))
def test_function_runs_the_newest_python_traced_with_its_handler_and_timeout(
    cdk_template: Template, function_id: str
) -> None:
    handler, timeout = HANDLERS[function_id]
    cdk_template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": handler,
            "Runtime": constants.LAMBDA_RUNTIME_PYTHON,
            "Architectures": [constants.LAMBDA_ARCHITECTURE],
            "MemorySize": constants.LAMBDA_MEMORY_MB,
            "Timeout": timeout,
            "TracingConfig": {"Mode": "Active"},
            "LoggingConfig": {"LogGroup": {"Ref": Match.any_value()}},
        },
    )


@pytest.mark.parametrize("function_id", list(HANDLERS))
def test_function_environment_names_table_bucket_workflows_and_model(
    template: dict[str, Any], function_id: str
) -> None:
    variables = template["Resources"][function_id]["Properties"]["Environment"]["Variables"]
    assert variables["POWERTOOLS_SERVICE_NAME"] == "sutram"
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "Sutram"
    assert variables["SUTRAM_TABLE"] == {"Ref": _logical_id(template, "AWS::DynamoDB::Table")}
    assert variables["SUTRAM_BUCKET"] == {"Ref": _artifacts_bucket(template)}
    assert variables["SUTRAM_WORKFLOWS_DIR"] == "/var/task/workflows"
    # The session template is synthesized with the local context (tests/conftest.py).
    assert variables["SUTRAM_MODEL_PROVIDER"] == "scripted"
    assert variables["SUTRAM_MODEL_ID"] == "sutram.scripted-v1"
    assert variables["SUTRAM_OFFLOAD_THRESHOLD_BYTES"] == str(constants.DEFAULT_OFFLOAD_THRESHOLD)


def test_the_link_signing_keys_are_read_at_run_time_and_rotated_every_30_days(template: dict[str, Any]) -> None:
    (secret_id,) = Template.from_json(template).find_resources("AWS::SecretsManager::Secret")
    for function_id in (constants.API_FUNCTION_ID, constants.STEP_FUNCTION_ID):
        variables = template["Resources"][function_id]["Properties"]["Environment"]["Variables"]
        assert variables["SUTRAM_CALLBACK_SECRET_ARN"] == {"Ref": secret_id}  # where the keys are, not the keys
        reads = [
            s for s in role_statements(template, function_id) if "secretsmanager:GetSecretValue" in statement_actions(s)
        ]
        assert [s["Resource"] for s in reads] == [{"Ref": secret_id}]
    for function_id in HANDLERS:
        variables = template["Resources"][function_id]["Properties"]["Environment"]["Variables"]
        assert not any("secretsmanager" in json.dumps(value) or 'SECRET"' in name for name, value in variables.items())
    (schedule,) = Template.from_json(template).find_resources("AWS::SecretsManager::RotationSchedule").values()
    assert schedule["Properties"]["SecretId"] == {"Ref": secret_id}
    assert schedule["Properties"]["RotationLambdaARN"] == {"Fn::GetAtt": [constants.ROTATE_FUNCTION_ID, "Arn"]}
    assert schedule["Properties"]["RotationRules"]["ScheduleExpression"] == "rate(30 days)"


def test_api_function_knows_the_state_machine_of_every_workflow(template: dict[str, Any], definitions: list) -> None:
    value = template["Resources"][constants.API_FUNCTION_ID]["Properties"]["Environment"]["Variables"][
        "SUTRAM_STATE_MACHINES"
    ]
    machines = {
        logical_id
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::StepFunctions::StateMachine"
    }
    parts = value["Fn::Join"][1]
    text = joined(value, lambda part: part["Ref"])
    assert set(json.loads(text)) == {definition.name for definition in definitions}
    assert {part["Ref"] for part in parts if isinstance(part, dict)} == machines


def test_every_log_group_keeps_logs_for_a_month(cdk_template: Template) -> None:
    groups = cdk_template.find_resources("AWS::Logs::LogGroup")
    assert groups
    assert {group["Properties"]["RetentionInDays"] for group in groups.values()} == {30}


def test_step_function_may_call_bedrock_models_and_use_table_and_bucket(cdk_template: Template) -> None:
    statements = role_statements(cdk_template.to_json(), constants.STEP_FUNCTION_ID)
    assert {"bedrock:InvokeModel", "dynamodb:UpdateItem", "dynamodb:GetItem", "s3:PutObject"} <= _actions(statements)
    # Only to resume an `approval` task whose retried request finds the decision already taken.
    assert {action for action in _actions(statements) if action.startswith("states:")} == {
        "states:SendTaskSuccess",
        "states:SendTaskFailure",
    }


def test_approval_events_go_to_sutram_s_own_bus_and_only_the_step_function_publishes(template: dict[str, Any]) -> None:
    (bus_id,) = Template.from_json(template).find_resources("AWS::Events::EventBus")
    assert template["Resources"][bus_id]["Properties"]["Name"] == "Sutram-approvals"
    publish = [
        s for s in role_statements(template, constants.STEP_FUNCTION_ID) if "events:PutEvents" in str(s["Action"])
    ]
    assert [s["Resource"] for s in publish] == [{"Fn::GetAtt": [bus_id, "Arn"]}]
    for function_id in HANDLERS:
        variables = template["Resources"][function_id]["Properties"]["Environment"]["Variables"]
        assert variables["SUTRAM_EVENT_BUS"] == {"Ref": bus_id}
        assert variables["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false"  # links and presigned URLs stay out of traces
        others = [s for s in role_statements(template, function_id) if "events:PutEvents" in str(s["Action"])]
        assert function_id == constants.STEP_FUNCTION_ID or others == []


def test_finish_function_writes_the_table_and_artifacts_only(cdk_template: Template) -> None:
    actions = _actions(role_statements(cdk_template.to_json(), constants.FINISH_FUNCTION_ID))
    assert {action.split(":")[0] for action in actions} == {"dynamodb", "s3", "xray"}
    assert "dynamodb:Query" not in actions


def test_api_function_may_start_and_describe_executions_but_not_call_models(cdk_template: Template) -> None:
    actions = _actions(role_statements(cdk_template.to_json(), constants.API_FUNCTION_ID))
    assert {"states:StartExecution", "states:DescribeExecution", "dynamodb:Query", "s3:GetObject"} <= actions
    assert not any(action.startswith("bedrock:") for action in actions)


def test_context_defaults_apply_when_cdk_json_says_nothing() -> None:
    config = RuntimeConfig.from_context(App().node)
    assert config == RuntimeConfig("bedrock", "anthropic.claude-3-5-haiku-20241022-v1:0", 8192)


def test_reserved_concurrency_is_opt_in_per_function_and_a_bad_value_fails_synth_naming_it(
    template: dict[str, Any], tmp_path: Path
) -> None:
    functions = Template.from_json(template).find_resources("AWS::Lambda::Function")
    assert all("ReservedConcurrentExecutions" not in f["Properties"] for f in functions.values())

    stack = Stack(App(context={constants.CONTEXT_RESERVED_CONCURRENCY: {"step": 100, "api": 20}}), "Reserved")
    SutramFunctions(
        stack,
        "Functions",
        code=lambda_.Code.from_asset(str(tmp_path)),
        table=dynamodb.Table(
            stack, "T", partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING)
        ),
        bucket=s3.Bucket(stack, "B"),
        config=RuntimeConfig.from_context(stack.node),
    )
    reserved = {
        logical_id: resource["Properties"].get("ReservedConcurrentExecutions")
        for logical_id, resource in Template.from_stack(stack).find_resources("AWS::Lambda::Function").items()
    }
    assert reserved == {
        constants.STEP_FUNCTION_ID: 100,
        constants.API_FUNCTION_ID: 20,
        constants.FINISH_FUNCTION_ID: None,
        constants.ROTATE_FUNCTION_ID: None,
    }
    for bad, message in [
        ({"steps": 5}, "no function named 'steps'"),
        ({"step": 0}, r"sutram:reservedConcurrency.step=0 is invalid"),
        ([5], "must map function names to numbers"),
    ]:
        with pytest.raises(ValueError, match=message):
            RuntimeConfig.from_context(App(context={constants.CONTEXT_RESERVED_CONCURRENCY: bad}).node)


def test_unknown_model_provider_in_context_fails_synth_naming_the_key() -> None:
    with pytest.raises(ValueError, match="sutram:modelProvider"):
        RuntimeConfig.from_context(App(context={"sutram:modelProvider": "gpt"}).node)


def test_artifacts_are_read_and_written_under_tenants_only(template: dict[str, Any]) -> None:
    def s3_statements(function_id: str) -> list[dict[str, Any]]:
        statements = role_statements(template, function_id)
        return [s for s in statements if any(a.startswith("s3:") for a in statement_actions(s))]

    objects = {"Fn::Join": ["", [{"Fn::GetAtt": [_artifacts_bucket(template), "Arn"]}, "/tenants/*"]]}
    for function_id in (constants.STEP_FUNCTION_ID, constants.FINISH_FUNCTION_ID, constants.API_FUNCTION_ID):
        statements = s3_statements(function_id)
        assert [(sorted(statement_actions(s)), s["Resource"]) for s in statements] == [
            (["s3:GetObject", "s3:PutObject"], objects)
        ]
    assert s3_statements(constants.ROTATE_FUNCTION_ID) == []


def _artifacts_bucket(template: dict[str, Any]) -> str:
    """The bucket the functions keep artifacts in (the other one holds its access logs)."""
    (logical_id,) = [
        key
        for key, value in template["Resources"].items()
        if value["Type"] == "AWS::S3::Bucket" and "LoggingConfiguration" in value["Properties"]
    ]
    return logical_id


def _logical_id(template: dict[str, Any], resource_type: str) -> str:
    (logical_id,) = [key for key, value in template["Resources"].items() if value["Type"] == resource_type]
    return logical_id


def test_each_function_may_make_only_the_dynamodb_calls_its_code_makes(template: dict[str, Any]) -> None:
    def dynamodb_actions(function_id: str) -> set[str]:
        return {a for a in _actions(role_statements(template, function_id)) if a.startswith("dynamodb:")}

    assert dynamodb_actions(constants.STEP_FUNCTION_ID) == {
        "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query"
    }  # fmt: skip
    assert dynamodb_actions(constants.FINISH_FUNCTION_ID) == {"dynamodb:UpdateItem"}
    assert dynamodb_actions(constants.API_FUNCTION_ID) == {
        "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:Query"
    }  # fmt: skip
    assert dynamodb_actions(constants.ROTATE_FUNCTION_ID) == set()
