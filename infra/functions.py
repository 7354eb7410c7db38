"""The Lambda functions (step, finish, api, and rotate for the link-signing keys): one code asset,
one configuration, least privilege.

The deployment's model defaults and offload threshold come from CDK context (cdk.json):
`sutram:modelProvider`, `sutram:modelId` and `sutram:offloadThresholdBytes`; an optional
`sutram:approvalWebhookUrl` receives a message for every approval requested. `sutram:lambdaPython`
(`python3.14`) is the functions' runtime and the Python their bundled dependencies are built for.
`sutram:reservedConcurrency` ({"step": 100, "api": 20, ...}) reserves concurrency per function:
off by default, since a reservation must leave the account 100 unreserved executions and a new
account's quota of 10 refuses any.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct, Node

from infra import constants, nag
from infra.versions import LiveVersion
from sutram.definition import ModelSpec
from sutram.store import keys

_LAMBDA_PYTHON = re.compile(r"python3\.\d+")


def _states_arn(stack: Stack, resource: str, name: str) -> str:
    """Every version and alias of the state machine `name`, or every execution of it: `<ARN>:*`."""
    return stack.format_arn(
        service="states", resource=resource, resource_name=f"{name}:*", arn_format=ArnFormat.COLON_RESOURCE_NAME
    )


@dataclass(frozen=True)
class RuntimeConfig:
    """Deployment-wide defaults every function receives through its environment, and the runtime."""

    model_provider: str
    model_id: str
    offload_threshold_bytes: int
    approval_webhook_url: str = ""
    lambda_python: str = constants.LAMBDA_RUNTIME_PYTHON  # a Lambda runtime identifier: python3.N
    # function ("step", "finish", "api", "rotate") -> reserved concurrent executions
    reserved_concurrency: Mapping[str, int] = field(default_factory=dict)

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
        reserved = _reserved_concurrency(context(constants.CONTEXT_RESERVED_CONCURRENCY, {}))
        try:
            ModelSpec(provider=provider, model_id=model_id)
            return cls(provider, model_id, int(threshold), webhook, python, reserved)
        except ValueError as exc:  # pydantic's ValidationError included
            raise ValueError(
                f"CDK context {constants.CONTEXT_MODEL_PROVIDER}={provider!r}, {constants.CONTEXT_MODEL_ID}="
                f"{model_id!r}, {constants.CONTEXT_OFFLOAD_THRESHOLD}={threshold!r} is invalid: {exc}"
            ) from None


def _reserved_concurrency(value: Any) -> dict[str, int]:
    """The `sutram:reservedConcurrency` context: {function: executions}, each a positive integer."""
    key = constants.CONTEXT_RESERVED_CONCURRENCY
    if not isinstance(value, dict):
        raise ValueError(f'CDK context {key} must map function names to numbers, e.g. {{"step": 100}}')
    unknown = sorted(set(value) - set(constants.FUNCTION_NAMES))
    if unknown:
        raise ValueError(f"CDK context {key}: no function named {unknown[0]!r}; the functions are "
                         f"{', '.join(constants.FUNCTION_NAMES)}")  # fmt: skip
    for name, executions in value.items():
        if isinstance(executions, bool) or not isinstance(executions, int) or executions < 1:
            raise ValueError(f"CDK context {key}.{name}={executions!r} is invalid: expected a positive integer")
    return dict(value)


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
        # Sutram's own bus for "Approval requested" events, whose details carry live approve/reject
        # links: only rules made on this bus see them, never the account's default bus.
        self.approval_events = events.EventBus(
            self, "ApprovalEvents", event_bus_name=f"{Stack.of(self).stack_name}-{constants.EVENT_BUS_SUFFIX}"
        )
        self._environment = {
            "POWERTOOLS_SERVICE_NAME": constants.SERVICE_NAME,
            "POWERTOOLS_METRICS_NAMESPACE": constants.METRICS_NAMESPACE,
            # Traces keep timings and errors, not results: responses hold presigned URLs and links.
            "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",
            constants.ENV_TABLE: table.table_name,
            constants.ENV_BUCKET: bucket.bucket_name,
            constants.ENV_WORKFLOWS_DIR: constants.LAMBDA_WORKFLOWS_DIR,
            constants.ENV_MODEL_PROVIDER: config.model_provider,
            constants.ENV_MODEL_ID: config.model_id,
            constants.ENV_OFFLOAD_THRESHOLD: str(config.offload_threshold_bytes),
            constants.ENV_EVENT_BUS: self.approval_events.event_bus_name,
        } | ({constants.ENV_APPROVAL_WEBHOOK_URL: config.approval_webhook_url} if config.approval_webhook_url else {})
        self._reserved = config.reserved_concurrency
        self.step = self._build_function(
            "step", constants.STEP_FUNCTION_ID, "sutram.handlers.step.handler", constants.STEP_FUNCTION_TIMEOUT
        )
        self.finish = self._build_function(
            "finish", constants.FINISH_FUNCTION_ID, "sutram.handlers.finish.handler", constants.FINISH_FUNCTION_TIMEOUT
        )
        self.api = self._build_function(
            "api", constants.API_FUNCTION_ID, "sutram.handlers.api.handler", constants.API_FUNCTION_TIMEOUT
        )
        self.rotate = self._build_function(
            "rotate", constants.ROTATE_FUNCTION_ID, "sutram.handlers.rotate.handler", constants.ROTATE_FUNCTION_TIMEOUT
        )

        # Each function's role: its table and bucket access, and one named policy per purpose, so
        # that each wildcard a purpose needs is accepted for that purpose alone (infra.nag).
        # DynamoDB: the item calls each function's code makes (sutram.store), on the table and, for
        # the api's listings, its index; no scan, batch, transaction or delete beyond the api's
        # discarding of a run that never started.
        index = f"{table.table_arn}/index/{keys.INDEX}"
        item_calls = {
            self.step: (["GetItem", "PutItem", "UpdateItem", "Query"], [table.table_arn]),
            self.finish: (["UpdateItem"], [table.table_arn]),
            self.api: (["GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query"], [table.table_arn, index]),
        }
        for function, (actions, resources) in item_calls.items():
            self._policy(
                function,
                "Table",
                [iam.PolicyStatement(actions=[f"dynamodb:{action}" for action in actions], resources=resources)],
                "",
            )
        stack = Stack.of(self)
        for function in (self.step, self.finish, self.api):
            # put_object, get_object and presigned GETs (sutram.store.artifacts), under tenants/ only.
            # finish reads a run's output back whole and stores it as one artifact if large.
            artifacts = bucket.arn_for_objects(f"{constants.ARTIFACTS_PREFIX}*")
            self._policy(
                function,
                "Artifacts",
                [iam.PolicyStatement(actions=["s3:GetObject", "s3:PutObject"], resources=[artifacts])],
                "Artifacts are objects named at run time under tenants/<tenant>/ in Sutram's own bucket; "
                "only GetObject and PutObject.",
            )
        self._policy(
            self.step,
            "InvokeModels",
            [self._model_invocation_statement()],
            "Workflows name their Bedrock model per step, in definitions deployed with the code; only "
            "InvokeModel, on foundation models and this account's inference profiles.",
        )
        self.approval_events.grant_put_events_to(self.step)
        # Resuming a waiting `approval` task: the step function when a retried request finds the
        # decision already taken, the api function when an approver decides.
        for function in (self.step, self.api):
            self._policy(
                function,
                "ResumeTasks",
                [self._task_response_statement()],
                "By this stack's state machine name prefix: a grant on the state machines themselves would "
                "make them and the functions they invoke depend on each other.",
            )
        table_id = stack.resolve(stack.get_logical_id(cast(dynamodb.CfnTable, table.node.default_child)))
        for function in (self.step, self.finish, self.api, self.rotate):
            nag.acknowledge(
                function,
                {
                    "IAM5[Resource::*]": "X-Ray's PutTraceSegments and PutTelemetryRecords, and for the rotate "
                    "function secretsmanager:GetRandomPassword, support no resource-level permissions.",
                    f"IAM5[Resource::<{table_id}.Arn>/index/*]": "The table's own index (gsi1), which "
                    "DynamoDB authorises by index ARN.",
                },
            )
        # The HMAC keys of approval callback links (sutram.store.signing_keys): generated once per
        # stack, read at run time by the functions that sign and verify links, rotated every
        # KEY_ROTATION_DAYS by the rotate function. Only the secret's ARN is in their environment.
        callback_secret = secretsmanager.Secret(
            self,
            "CallbackSecret",
            description="Signs Sutram's approval callback links",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                secret_string_template="{}", generate_string_key="key", exclude_punctuation=True, password_length=48
            ),
        )
        # The api function verifies links; the step function signs the ones its notifications carry.
        for function in (self.api, self.step):
            function.add_environment(constants.ENV_CALLBACK_SECRET_ARN, callback_secret.secret_arn)
            callback_secret.grant_read(function)
        callback_secret.add_rotation_schedule(
            "Rotation", rotation_lambda=self.rotate, automatically_after=Duration.days(constants.KEY_ROTATION_DAYS)
        )
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
        names = [f"{stack.stack_name}-{name}" for name in workflows]
        runs = [
            # A run starts on a version (`<state machine ARN>:<n>`), the one the alias routes to unless
            # the caller names another; an unqualified ARN in a policy would not cover it.
            iam.PolicyStatement(
                actions=["states:StartExecution"], resources=[_states_arn(stack, "stateMachine", n) for n in names]
            ),
            iam.PolicyStatement(actions=["states:DescribeStateMachineAlias"], resources=list(aliases.values())),
            # Resume reads whether an execution ended; abort stops one (sutram.recovery).
            iam.PolicyStatement(
                actions=["states:DescribeExecution", "states:StopExecution"],
                resources=[_states_arn(stack, "execution", n) for n in names],
            ),
        ]
        self._policy(
            self.api,
            "StartRuns",
            runs,
            "Runs start on a workflow's versions (<state machine>:<n>), and their executions are named by "
            "run id at run time (and are stopped by it); only this stack's state machines and their executions.",
        )

    def _policy(
        self, function: lambda_.Function, purpose: str, statements: list[iam.PolicyStatement], why: str
    ) -> None:
        """`statements` as the inline policy `<function><purpose>` of `function`'s role; `why` is the
        reason each resource with a `*` in them needs it (acknowledged one resource at a time)."""
        policy = iam.Policy(self, f"{function.node.id}{purpose}", statements=statements)
        assert function.role is not None
        function.role.attach_inline_policy(policy)
        wildcards = {nag.flat(self, r) for statement in statements for r in statement.resources}
        nag.acknowledge(policy, {f"IAM5[Resource::{w}]": why for w in sorted(wildcards) if "*" in w})

    def _build_function(self, name: str, logical_id: str, handler: str, timeout_seconds: int) -> lambda_.Function:
        function = lambda_.Function(
            self,
            logical_id,
            runtime=self._runtime,
            architecture=lambda_.Architecture.custom(constants.LAMBDA_ARCHITECTURE),
            code=self._code,
            handler=handler,
            memory_size=constants.LAMBDA_MEMORY_MB,
            timeout=Duration.seconds(timeout_seconds),
            reserved_concurrent_executions=self._reserved.get(name),
            tracing=lambda_.Tracing.ACTIVE,
            environment=self._environment,
            log_group=logs.LogGroup(
                self, f"{logical_id}Logs", retention=constants.LOG_RETENTION, removal_policy=RemovalPolicy.DESTROY
            ),
        )
        cast(lambda_.CfnFunction, function.node.default_child).override_logical_id(logical_id)
        if self._runtime.name != constants.LAMBDA_RUNTIME_PYTHON:
            nag.acknowledge(
                function,
                {
                    "L1": f"The deployment chose {self._runtime.name} (CDK context {constants.CONTEXT_LAMBDA_PYTHON}); "
                    f"the default is the newest Python runtime, {constants.LAMBDA_RUNTIME_PYTHON}."
                },
            )
        nag.acknowledge(
            function,
            {
                "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]": "AWS's "
                "managed basic execution policy grants only logs:CreateLogGroup, CreateLogStream and "
                "PutLogEvents, which the function needs to write its own log group.",
            },
        )
        return function

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
