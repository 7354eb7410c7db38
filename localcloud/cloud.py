"""The local cloud: moto in-process, provisioned from the template CDK synthesized.

    LocalCloud(template).start()
      ├─ DynamoDB tables, S3 buckets, Cognito user pools   created from the template's properties
      ├─ Lambda functions                                  created in moto; invocations run the
      │                                                    real handlers in this process
      └─ Step Functions state machines                     created from the synthesized ASL and
         their versions and aliases                        executed by moto's ASL interpreter

    cloud.redeploy(changed_template)                       what `cdk deploy` does to a changed
                                                           workflow: new definition, new version,
                                                           alias moved to it

The step code is the code that runs in Lambda, talking to AWS through boto3; only the endpoint
(moto) and a few settings differ. The patches of moto internals this needs (Lambda invocations
reaching the handlers in-process, executions started on versions and from tasks) are in
localcloud/moto_patches.py; this module provisions from the template.
"""

from __future__ import annotations

import importlib
import io
import logging
import os
import secrets
import threading
import traceback
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
from aws_lambda_powertools import Metrics
from moto import mock_aws
from moto.core.config import DefaultConfig

from localcloud.lambda_context import LocalLambdaContext
from localcloud.moto_patches import (
    ACCOUNT,
    REGION,
    install_invoke_seam,
    start_executions_from_tasks,
    start_executions_on_versions,
)
from localcloud.template import resolve, resources_of_type

LOCAL_ROLE = f"arn:aws:iam::{ACCOUNT}:role/sutram-local"
MOTO_CONFIG: DefaultConfig = {
    "stepfunctions": {"execute_state_machine": True},
    "lambda": {"use_docker": False},
}
# Settings that differ locally: no X-Ray daemon, no CloudWatch agent, quiet logs.
LOCAL_ENV = {
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}


@dataclass
class LocalFunction:
    name: str
    handler_path: str  # module.attribute, as in the template's Handler property
    environment: dict[str, str]
    timeout_seconds: int
    arn: str
    _handler: Callable[[Any, Any], Any] | None = field(default=None, repr=False)

    @property
    def handler(self) -> Callable[[Any, Any], Any]:
        if self._handler is None:
            module, attribute = self.handler_path.rsplit(".", 1)
            self._handler = getattr(importlib.import_module(module), attribute)
        return self._handler


class LocalCloud:
    def __init__(self, template: dict[str, Any], *, environment: dict[str, str] | None = None) -> None:
        self.template = template
        # Deployed, the callback secret comes from Secrets Manager; locally, a fresh random one.
        self.environment_overrides = {"SUTRAM_CALLBACK_SECRET": secrets.token_hex(32), **(environment or {})}
        self.functions: dict[str, LocalFunction] = {}
        self.state_machines: dict[str, str] = {}  # state machine name -> ARN
        self.invocations: Counter[str] = Counter()
        self._physical: dict[str, str] = {}
        self._arns: dict[str, str] = {}
        self._mock = mock_aws(config=MOTO_CONFIG)
        self._lock = threading.Lock()
        # All handlers share this process's module-level state (sutram.clients' cached boto3 clients and
        # resources, which are not thread-safe, and sutram.wiring's stores on them). A Lambda sandbox runs
        # one invocation at a time; so does this process: every invocation, of any function, holds
        # `sandbox` (re-entrant: a handler may invoke).
        self.sandbox = threading.RLock()

    # lifecycle -------------------------------------------------------------------------------

    def start(self) -> LocalCloud:
        os.environ.update(LOCAL_ENV)
        # moto's interpreter logs every IsPresent miss and every caught task error as an ERROR;
        # the execution's own status and history say what matters.
        logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)
        self._mock.start()
        boto3.client("iam").create_role(RoleName="sutram-local", AssumeRolePolicyDocument="{}")
        self._create_tables()
        self._create_buckets()
        self._create_user_pools()
        self._name_functions()
        self._create_state_machines()
        self._create_functions()
        install_invoke_seam(self.invoke)
        start_executions_on_versions()
        start_executions_from_tasks()
        self._configure_process_environment()
        return self

    def stop(self) -> None:
        self._mock.stop()

    def __enter__(self) -> LocalCloud:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # invoking --------------------------------------------------------------------------------

    def invoke(self, function_name: str, event: Any) -> tuple[Any, str | None]:
        """Run a function's handler as Lambda would: (payload, function error or None)."""
        function = self.functions[function_name.rsplit(":", 1)[-1]]
        with self._lock:
            self.invocations[function.name] += 1
        context = LocalLambdaContext(function_name=function.name, timeout_seconds=function.timeout_seconds)
        try:
            with self.sandbox:
                return function.handler(event, context), None
        except SystemExit as exc:  # the runtime process exited: Lambda reports Runtime.ExitError
            return {
                "errorType": "Runtime.ExitError",
                "errorMessage": f"RequestId: {context.aws_request_id} Error: Runtime exited with error: {exc}",
            }, "Unhandled"
        except Exception as exc:
            return {
                "errorType": type(exc).__name__,
                "errorMessage": str(exc),
                "stackTrace": traceback.format_exception(exc)[-5:],
            }, "Unhandled"
        finally:
            # Locally there is no CloudWatch to receive metrics (POWERTOOLS_METRICS_DISABLED), and
            # Powertools keeps undelivered metrics in a process-wide set: drop them per invocation.
            Metrics().clear_metrics()

    def function_named(self, handler_path: str) -> LocalFunction:
        return next(f for f in self.functions.values() if f.handler_path == handler_path)

    role_arn = LOCAL_ROLE

    def add_function(
        self, name: str, handler_path: str, environment: dict[str, str], timeout_seconds: int = 60
    ) -> LocalFunction:
        """Create a function that is not in the template (benchmarks, tests)."""
        boto3.client("lambda").create_function(
            FunctionName=name,
            Runtime="python3.13",
            Role=LOCAL_ROLE,
            Handler=handler_path,
            Code={"ZipFile": _empty_zip()},
            Timeout=timeout_seconds,
            Environment={"Variables": environment},
        )
        arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
        self.functions[name] = LocalFunction(name, handler_path, environment, timeout_seconds, arn)
        return self.functions[name]

    # provisioning ----------------------------------------------------------------------------

    def _resolve(self, value: Any) -> Any:
        pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": "sutram-local",
        }
        return resolve(value, self._ref, self._get_att, pseudo)

    def _ref(self, logical_id: str) -> str:
        return self._physical.get(logical_id, f"local-{logical_id}")

    def _get_att(self, logical_id: str, attribute: str) -> str:
        if attribute == "Arn":
            return self._arns.get(logical_id, f"arn:aws:local:{REGION}:{ACCOUNT}:{logical_id}")
        return self._physical.get(logical_id, f"local-{logical_id}")

    def _create_tables(self) -> None:
        client = boto3.client("dynamodb")
        for logical_id, resource in resources_of_type(self.template, "AWS::DynamoDB::Table").items():
            props = self._resolve(resource["Properties"])
            name = props.get("TableName", f"sutram-{logical_id}")
            indexes = [
                {key: index[key] for key in ("IndexName", "KeySchema", "Projection")}
                for index in props.get("GlobalSecondaryIndexes", [])
            ]
            client.create_table(
                TableName=name,
                KeySchema=props["KeySchema"],
                AttributeDefinitions=props["AttributeDefinitions"],
                BillingMode=props.get("BillingMode", "PAY_PER_REQUEST"),
                **({"GlobalSecondaryIndexes": indexes} if indexes else {}),
            )
            if ttl := props.get("TimeToLiveSpecification"):
                client.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
            self._physical[logical_id] = name
            self._arns[logical_id] = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"

    def _create_buckets(self) -> None:
        client = boto3.client("s3")
        for logical_id, resource in resources_of_type(self.template, "AWS::S3::Bucket").items():
            props = self._resolve(resource.get("Properties", {}))
            name = props.get("BucketName", f"sutram-{logical_id.lower()}")
            client.create_bucket(Bucket=name)
            self._physical[logical_id] = name
            self._arns[logical_id] = f"arn:aws:s3:::{name}"

    def _create_user_pools(self) -> None:
        client = boto3.client("cognito-idp")
        for logical_id, resource in resources_of_type(self.template, "AWS::Cognito::UserPool").items():
            props = resource.get("Properties", {})
            pool = client.create_user_pool(
                PoolName=props.get("UserPoolName", logical_id),
                Schema=[
                    {
                        key: value
                        for key, value in attribute.items()
                        if key in ("Name", "AttributeDataType", "Mutable", "Required")
                    }
                    for attribute in props.get("Schema", [])
                ],
            )["UserPool"]
            self._physical[logical_id] = pool["Id"]
            self._arns[logical_id] = pool["Arn"]
        for logical_id, resource in resources_of_type(self.template, "AWS::Cognito::UserPoolClient").items():
            props = self._resolve(resource["Properties"])
            app_client = client.create_user_pool_client(
                UserPoolId=props["UserPoolId"],
                ClientName=props.get("ClientName", logical_id),
                ExplicitAuthFlows=props.get(
                    "ExplicitAuthFlows", ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
                ),
            )["UserPoolClient"]
            self._physical[logical_id] = app_client["ClientId"]

    def _name_functions(self) -> None:
        # Names first: state machines invoke the functions, and the functions' environments name
        # each other, the state machines and their aliases.
        for logical_id in resources_of_type(self.template, "AWS::Lambda::Function"):
            self._physical[logical_id] = logical_id
            self._arns[logical_id] = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{logical_id}"

    def _create_functions(self) -> None:
        client = boto3.client("lambda")
        placeholder = _empty_zip()
        for logical_id, resource in resources_of_type(self.template, "AWS::Lambda::Function").items():
            props = resource["Properties"]
            handler = props.get("Handler")
            if not handler or not handler.startswith("sutram."):
                continue  # CDK's own helper functions (log retention, custom resources)
            environment = self._resolve(props.get("Environment", {}).get("Variables", {}))
            client.create_function(
                FunctionName=logical_id,
                Runtime=props.get("Runtime", "python3.13"),
                Role=LOCAL_ROLE,
                Handler=handler,
                Code={"ZipFile": placeholder},
                Timeout=props.get("Timeout", 3),
                Environment={"Variables": environment},
            )
            self.functions[logical_id] = LocalFunction(
                name=logical_id,
                handler_path=handler,
                environment={key: str(value) for key, value in environment.items()},
                timeout_seconds=props.get("Timeout", 3),
                arn=self._arns[logical_id],
            )

    def _create_state_machines(self) -> None:
        """The state machines, a version of each (StateMachineVersion), and the aliases routing to them."""
        client = boto3.client("stepfunctions")
        for logical_id, resource in resources_of_type(self.template, "AWS::StepFunctions::StateMachine").items():
            props = resource["Properties"]
            name = props.get("StateMachineName", logical_id)
            arn = client.create_state_machine(
                name=name,
                definition=self._resolve(props["DefinitionString"]),
                roleArn=LOCAL_ROLE,
                type=props.get("StateMachineType", "STANDARD"),
            )["stateMachineArn"]
            self._physical[logical_id] = self._arns[logical_id] = arn  # Ref of a state machine is its ARN
            self.state_machines[name] = arn
            self._publish_versions_of(logical_id)
        for logical_id, resource in resources_of_type(self.template, "AWS::StepFunctions::StateMachineAlias").items():
            props = self._resolve(resource["Properties"])
            arn = client.create_state_machine_alias(name=props["Name"], routingConfiguration=_routing(props))[
                "stateMachineAliasArn"
            ]
            self._physical[logical_id] = self._arns[logical_id] = arn  # Ref of an alias is its ARN

    def redeploy(self, template: dict[str, Any]) -> list[str]:
        """Deploy `template` over this cloud as CloudFormation would deploy a changed workflow: each
        state machine whose definition changed gets it, publishes a new version (the old ones stay,
        and so do executions running on them), and the aliases route to the new versions. Returns the
        names of the changed state machines. Only state machine definitions may differ from the
        template the cloud started with."""
        client = boto3.client("stepfunctions")
        changed = []
        with self.sandbox:  # not while a handler starts an execution (see moto_patches.start_executions_on_versions)
            self.template = template
            for logical_id, resource in resources_of_type(template, "AWS::StepFunctions::StateMachine").items():
                definition = self._resolve(resource["Properties"]["DefinitionString"])
                arn = self._arns[logical_id]
                if client.describe_state_machine(stateMachineArn=arn)["definition"] != definition:
                    client.update_state_machine(stateMachineArn=arn, definition=definition)
                    self._publish_versions_of(logical_id)
                    changed.append(resource["Properties"].get("StateMachineName", logical_id))
            for logical_id, resource in resources_of_type(template, "AWS::StepFunctions::StateMachineAlias").items():
                client.update_state_machine_alias(
                    stateMachineAliasArn=self._arns[logical_id],
                    routingConfiguration=_routing(self._resolve(resource["Properties"])),
                )
        return changed

    def _publish_versions_of(self, machine_id: str) -> None:
        """Publish the state machine's current definition for each StateMachineVersion of it."""
        client = boto3.client("stepfunctions")
        versions = resources_of_type(self.template, "AWS::StepFunctions::StateMachineVersion")
        for logical_id, resource in versions.items():
            if resource["Properties"]["StateMachineArn"] != {"Ref": machine_id}:
                continue
            arn = self._arns[machine_id]
            definition = client.describe_state_machine(stateMachineArn=arn)["definition"]
            published = client.update_state_machine(stateMachineArn=arn, definition=definition, publish=True)
            self._physical[logical_id] = self._arns[logical_id] = published["stateMachineVersionArn"]

    def _configure_process_environment(self) -> None:
        # All handlers share this process, and their variables agree (same table, same bucket).
        for function in self.functions.values():
            os.environ.update(function.environment)
        os.environ.update(self.environment_overrides)
        from sutram import wiring

        wiring.reset()


def _routing(alias_properties: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"stateMachineVersionArn": route["StateMachineVersionArn"], "weight": route["Weight"]}
        for route in alias_properties["RoutingConfiguration"]
    ]


def _empty_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.py", "")
    return buffer.getvalue()
