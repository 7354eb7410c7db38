"""The three Lambda functions (step, finish, api): one code asset, one configuration, least privilege.

The deployment's model defaults and offload threshold come from CDK context (cdk.json):
`sutram:modelProvider`, `sutram:modelId` and `sutram:offloadThresholdBytes`; an optional
`sutram:approvalWebhookUrl` receives a message for every approval requested. `sutram:lambdaPython`
(`python3.13`) is the functions' runtime and the Python their bundled dependencies are built for.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct, Node

from infra import constants
from infra.versions import LiveVersion
from sutram.definition import ModelSpec

_LAMBDA_PYTHON = re.compile(r"python3\.\d+")


@dataclass(frozen=True)
class RuntimeConfig:
    """Deployment-wide defaults every function receives through its environment, and the runtime."""

    model_provider: str
    model_id: str
    offload_threshold_bytes: int
    approval_webhook_url: str = ""
    lambda_python: str = constants.LAMBDA_RUNTIME_PYTHON  # a Lambda runtime identifier: python3.N

    @classmethod
    def from_context(cls, node: Node) -> RuntimeConfig:
        def context(key: str, default: Any) -> Any:
            value = node.try_get_context(key)
            return default if value is None else value

        provider = context(constants.CONTEXT_MODEL_PROVIDER, constants.DEFAULT_MODEL_PROVIDER)
        model_id = context(constants.CONTEXT_MODEL_ID, constants.DEFAULT_MODEL_ID)
        threshold = context(constants.CONTEXT_OFFLOAD_THRESHOLD, constants.DEFAULT_OFFLOAD_THRESHOLD)
        webhook = str(context(constants.CONTEXT_APPROVAL_WEBHOOK_URL, ""))
        python = str(context(constants.CONTEXT_LAMBDA_PYTHON, constants.LAMBDA_RUNTIME_PYTHON))
        if not _LAMBDA_PYTHON.fullmatch(python):
            raise ValueError(f"CDK context {constants.CONTEXT_LAMBDA_PYTHON}={python!r} is invalid: expected python3.N")
        try:
            ModelSpec(provider=provider, model_id=model_id)
            return cls(provider, model_id, int(threshold), webhook, python)
        except ValueError as exc:  # pydantic's ValidationError included
            raise ValueError(
                f"CDK context {constants.CONTEXT_MODEL_PROVIDER}={provider!r}, {constants.CONTEXT_MODEL_ID}="
                f"{model_id!r}, {constants.CONTEXT_OFFLOAD_THRESHOLD}={threshold!r} is invalid: {exc}"
            ) from None


class SutramFunctions(Construct):
    """The step, finish and api functions, with stable logical ids (constants.*_FUNCTION_ID)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        code: lambda_.Code,
        table: dynamodb.ITable,
        bucket: s3.IBucket,
        config: RuntimeConfig,
    ) -> None:
        super().__init__(scope, construct_id)
        self._code = code
        self._runtime = lambda_.Runtime(config.lambda_python, lambda_.RuntimeFamily.PYTHON)
        self._environment = {
            "POWERTOOLS_SERVICE_NAME": constants.SERVICE_NAME,
            "POWERTOOLS_METRICS_NAMESPACE": constants.METRICS_NAMESPACE,
            constants.ENV_TABLE: table.table_name,
            constants.ENV_BUCKET: bucket.bucket_name,
            constants.ENV_WORKFLOWS_DIR: constants.LAMBDA_WORKFLOWS_DIR,
            constants.ENV_MODEL_PROVIDER: config.model_provider,
            constants.ENV_MODEL_ID: config.model_id,
            constants.ENV_OFFLOAD_THRESHOLD: str(config.offload_threshold_bytes),
            constants.ENV_EVENT_BUS: constants.EVENT_BUS_NAME,
        } | ({constants.ENV_APPROVAL_WEBHOOK_URL: config.approval_webhook_url} if config.approval_webhook_url else {})
        self.step = self._build_function(
            constants.STEP_FUNCTION_ID, "sutram.handlers.step.handler", constants.STEP_FUNCTION_TIMEOUT
        )
        self.finish = self._build_function(
            constants.FINISH_FUNCTION_ID, "sutram.handlers.finish.handler", constants.FINISH_FUNCTION_TIMEOUT
        )
        self.api = self._build_function(
            constants.API_FUNCTION_ID, "sutram.handlers.api.handler", constants.API_FUNCTION_TIMEOUT
        )

        table.grant_read_write_data(self.step)
        bucket.grant_read_write(self.step)
        self.step.add_to_role_policy(self._model_invocation_statement())
        self.step.add_to_role_policy(self._publish_events_statement())
        # Resuming a waiting `approval` task: the step function when a retried request finds the
        # decision already taken, the api function when an approver decides.
        self.step.add_to_role_policy(self._task_response_statement())
        self.api.add_to_role_policy(self._task_response_statement())
        table.grant_write_data(self.finish)
        table.grant_read_write_data(self.api)
        bucket.grant_read_write(self.api)
        # The HMAC key of approval callback links (sutram.approvals.links), generated once per stack. The
        # environment holds a dynamic reference, resolved at deployment: the template never contains it.
        callback_secret = secretsmanager.Secret(
            self,
            "CallbackSecret",
            description="Signs Sutram's approval callback links",
            generate_secret_string=secretsmanager.SecretStringGenerator(exclude_punctuation=True, password_length=48),
        )
        # The api function verifies links; the step function signs the ones its notifications carry.
        for function in (self.api, self.step):
            function.add_environment("SUTRAM_CALLBACK_SECRET", callback_secret.secret_value.unsafe_unwrap())
        if public_api_url := self.node.try_get_context(constants.CONTEXT_PUBLIC_API_URL):
            self.step.add_environment("SUTRAM_PUBLIC_API_URL", str(public_api_url))

    def let_api_run(self, workflows: Mapping[str, LiveVersion]) -> None:
        """Tell the api function each workflow's state machine and alias, and let it start their versions."""
        stack = Stack.of(self)
        machines = {name: live.state_machine.state_machine_arn for name, live in workflows.items()}
        aliases = {name: live.alias_arn for name, live in workflows.items()}
        self.api.add_environment(constants.ENV_STATE_MACHINES, stack.to_json_string(machines))
        self.api.add_environment(constants.ENV_WORKFLOW_ALIASES, stack.to_json_string(aliases))
        # A run starts on a version (`<state machine ARN>:<n>`), the one the alias routes to unless
        # the caller names another; an unqualified ARN in a policy would not cover it.
        self.api.add_to_role_policy(
            iam.PolicyStatement(actions=["states:StartExecution"], resources=[f"{arn}:*" for arn in machines.values()])
        )
        self.api.add_to_role_policy(
            iam.PolicyStatement(actions=["states:DescribeStateMachineAlias"], resources=list(aliases.values()))
        )
        for live in workflows.values():
            live.state_machine.grant_execution(self.api, "states:DescribeExecution")

    def _build_function(self, logical_id: str, handler: str, timeout_seconds: int) -> lambda_.Function:
        function = lambda_.Function(
            self,
            logical_id,
            runtime=self._runtime,
            architecture=lambda_.Architecture.custom(constants.LAMBDA_ARCHITECTURE),
            code=self._code,
            handler=handler,
            memory_size=constants.LAMBDA_MEMORY_MB,
            timeout=Duration.seconds(timeout_seconds),
            tracing=lambda_.Tracing.ACTIVE,
            environment=self._environment,
            log_group=logs.LogGroup(
                self, f"{logical_id}Logs", retention=constants.LOG_RETENTION, removal_policy=RemovalPolicy.DESTROY
            ),
        )
        cast(lambda_.CfnFunction, function.node.default_child).override_logical_id(logical_id)
        return function

    def _publish_events_statement(self) -> iam.PolicyStatement:
        bus = Stack.of(self).format_arn(service="events", resource="event-bus", resource_name=constants.EVENT_BUS_NAME)
        return iam.PolicyStatement(actions=["events:PutEvents"], resources=[bus])

    def _task_response_statement(self) -> iam.PolicyStatement:
        # By name pattern: a grant on the state machines themselves would make them and the step
        # function depend on each other.
        stack = Stack.of(self)
        machines = stack.format_arn(
            service="states",
            resource="stateMachine",
            resource_name=f"{stack.stack_name}-*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        return iam.PolicyStatement(actions=["states:SendTaskSuccess", "states:SendTaskFailure"], resources=[machines])

    def _model_invocation_statement(self) -> iam.PolicyStatement:
        stack = Stack.of(self)
        # Converse is authorised as bedrock:InvokeModel. Cross-region inference profiles route a
        # call to the foundation model in another region, hence the wildcard region.
        return iam.PolicyStatement(
            actions=["bedrock:InvokeModel"],
            resources=[
                f"arn:{stack.partition}:bedrock:*::foundation-model/*",
                f"arn:{stack.partition}:bedrock:*:{stack.account}:inference-profile/*",
            ],
        )
