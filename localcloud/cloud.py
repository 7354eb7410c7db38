"""The local cloud: moto in server mode on 127.0.0.1, provisioned from the cloud assembly CDK
synthesized, and each Lambda function run from its asset in sandboxes of its own.

    LocalCloud.from_assembly(cdk_out).start()
      ├─ moto server (a thread of this process)          DynamoDB, S3, Cognito, Lambda, Step Functions,
      │                                                  one state for every process, over HTTP
      ├─ tables, buckets, user pools                     created from the template's properties
      ├─ state machines, their versions and aliases      from the synthesized ASL, run by moto's
      │                                                  interpreter
      └─ Lambda functions                                every invocation (a Task state, the local API)
                                                         runs in a warm worker process started from the
                                                         function's asset with the template's Handler
                                                         and Environment (localcloud/sandboxes.py)

    cloud.redeploy(changed_template)                     what `cdk deploy` does to a changed workflow:
                                                         new definition, new version, alias moved to it

The code in the sandboxes is the code that deploys, and it sees what a Lambda sandbox sees, except
for LOCAL_OVERRIDES below, the one place where local runs differ. The patches of moto internals
this needs are in localcloud/moto_patches.py.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import secrets
import site
import socket
import sys
import threading
import zipfile
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import boto3
import requests
from moto.server import ThreadedMotoServer

from infra.assembly import function_assets, template_path
from localcloud.moto_patches import (
    ACCOUNT,
    DEFINITIONS,
    REGION,
    install_invoke_seam,
    start_executions_from_tasks,
    start_executions_on_versions,
    verify_srp_passwords,
)
from localcloud.sandboxes import LocalFunction, Sandboxes, lambda_environment
from localcloud.template import resolve, resources_of_type

REPO = Path(__file__).resolve().parent.parent
LOCAL_ROLE = f"arn:aws:iam::{ACCOUNT}:role/sutram-local"
LAMBDA_TASK_ROOT = "/var/task"  # where Lambda puts a function's code; locally, its asset directory
MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
# Where local runs differ from AWS, in every sandbox and in this process: the services are the
# moto server's (credentials it accepts), there is no X-Ray daemon to send traces to, and logs are
# quiet. Metrics are written as on AWS (EMF lines in the logs). Besides these: a value under
# /var/task names the same path in the function's asset, and drills (inject_faults) add variables
# per run.
LOCAL_OVERRIDES = {
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}
OBSERVER = Path(__file__).with_name("observe.py")


class Tally:
    """The counts of one kind the sandboxes report (LocalCloud.observations) from the moment it was made."""

    def __init__(self, cloud: LocalCloud, kind: str) -> None:
        self._cloud, self._kind = cloud, kind
        self._start = Counter(cloud.observations[kind])

    @property
    def counts(self) -> Counter[str]:
        return self._cloud.observations[self._kind] - self._start


class LocalCloud:
    def __init__(
        self,
        template: dict[str, Any],
        assets: Mapping[str, Path],
        *,
        environment: Mapping[str, str] | None = None,
        extensions: list[Path] | None = None,
    ) -> None:
        """`assets`: the asset directory of each Lambda function, by logical id (from_assembly reads
        them); `environment`: variables added to every sandbox; `extensions`: files loaded into every
        sandbox, besides the model-call counter (localcloud/bootstrap.py)."""
        self.template = template
        self.assets = dict(assets)
        self.environment = dict(environment or {})
        self.extensions = [OBSERVER, *(extensions or [])]
        self.functions: dict[str, LocalFunction] = {}
        self.state_machines: dict[str, str] = {}  # state machine name -> ARN
        self.invocations: Counter[str] = Counter()  # by function name
        self.observations: defaultdict[str, Counter[str]] = defaultdict(Counter)  # what the extensions count
        self.logs: list[tuple[str, str]] = []  # (function name, line) as the sandboxes wrote them
        self.endpoint = ""
        self.sandboxes: Sandboxes | None = None
        self._drills: dict[str | None, dict[str, str]] = {}  # run id (None: every run) -> variables
        self._physical: dict[str, str] = {}
        self._arns: dict[str, str] = {}
        self._server: ThreadedMotoServer | None = None
        self._environment_before: dict[str, str] = {}
        self._lock = threading.Lock()
        self._open = threading.Event()
        self._open.set()

    @classmethod
    def from_assembly(cls, outdir: Path, **options: Any) -> LocalCloud:
        """The cloud of a synthesized cloud assembly (`cdk.out`): its template and staged assets."""
        template = json.loads(template_path(outdir).read_text())
        return cls(template, function_assets(outdir), **options)

    # lifecycle -------------------------------------------------------------------------------

    def start(self) -> LocalCloud:
        self._environment_before = dict(os.environ)
        port = _free_port()
        self.endpoint = f"http://127.0.0.1:{port}"
        # MOTO_PORT: where moto's Step Functions interpreter sends its Lambda and Step Functions calls.
        os.environ.update(LOCAL_OVERRIDES | {"AWS_ENDPOINT_URL": self.endpoint, "MOTO_PORT": str(port)})
        # moto's interpreter logs every IsPresent miss and every caught task error as an ERROR;
        # the execution's own status and history say what matters.
        logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server = ThreadedMotoServer("127.0.0.1", port, verbose=False)
        self._server.start()
        requests.post(f"{self.endpoint}/moto-api/reset", timeout=10).raise_for_status()
        requests.post(f"{self.endpoint}/moto-api/config", json=MOTO_CONFIG, timeout=10).raise_for_status()
        self.sandboxes = Sandboxes(runtime_paths=site.getsitepackages(), extensions=self.extensions, log=self._log)
        boto3.client("iam").create_role(RoleName="sutram-local", AssumeRolePolicyDocument="{}")
        self._create_tables()
        self._create_buckets()
        self._create_user_pools()
        self._create_secrets()
        self._create_event_buses()
        self._name_functions()
        self._create_state_machines()
        self._create_functions()
        install_invoke_seam(self.invoke)
        start_executions_on_versions()
        start_executions_from_tasks()
        verify_srp_passwords()
        self._configure_process_environment()
        return self

    def stop(self) -> None:
        if self.sandboxes is not None:
            self.sandboxes.stop()
        if self._server is not None:
            with contextlib.suppress(requests.RequestException):
                requests.post(f"{self.endpoint}/moto-api/reset", timeout=10)  # the next cloud starts empty
            self._server.stop()
            self._server = None
        os.environ.clear()
        os.environ.update(self._environment_before)
        from sutram import wiring

        wiring.reset()

    def __enter__(self) -> LocalCloud:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # invoking --------------------------------------------------------------------------------

    def invoke(self, function_name: str, event: Any) -> tuple[Any, str | None]:
        """Run an invocation of a function in one of its sandboxes, as Lambda would: (payload,
        function error or None)."""
        assert self.sandboxes is not None, "the local cloud is not started"
        function = self.functions[function_name.rsplit(":", 1)[-1]]
        self._open.wait()
        with self._lock:
            self.invocations[function.name] += 1
            drill = self._drills.get(None, {}) | self._drills.get(_run_id(event), {})
        result = self.sandboxes.invoke(function, self.sandbox_environment(function) | drill, event)
        with self._lock:
            for kind, counts in result.observed.items():
                self.observations[kind].update(counts)
        return result.payload, result.error

    def sandbox_environment(self, function: LocalFunction) -> dict[str, str]:
        """What a sandbox of `function` sees: what Lambda sets, the template's Environment, and
        the local overrides."""
        return lambda_environment(function) | self.deployed_environment(function)

    def deployed_environment(self, function: LocalFunction) -> dict[str, str]:
        """The template's Environment of `function`, with the local overrides."""
        task_root = str(function.code[0])
        template = {
            name: task_root + value.removeprefix(LAMBDA_TASK_ROOT)
            if value == LAMBDA_TASK_ROOT or value.startswith(LAMBDA_TASK_ROOT + "/")
            else value
            for name, value in function.environment.items()
        }
        overrides = LOCAL_OVERRIDES | {"AWS_ENDPOINT_URL": self.endpoint}
        return template | overrides | self.environment

    def _log(self, function_name: str, line: str) -> None:
        """CloudWatch Logs' stand-in: a sandbox's stderr, kept in `logs` and echoed on this
        process's, but for metrics (EMF documents, which CloudWatch would turn into metrics)."""
        with self._lock:
            self.logs.append((function_name, line))
        if not line.startswith('{"_aws":'):
            print(f"[{function_name}] {line}", file=sys.stderr)

    def inject_faults(self, spec: str, *, run_id: str | None = None) -> None:
        """Run the invocations of run `run_id` (of every run, without one) as if deployed with
        SUTRAM_FAULTS=spec (sutram.faults), from now on; "" ends the drill. Their sandboxes are
        started with that environment, apart from the others."""
        self.drill({"SUTRAM_FAULTS": spec}, run_id=run_id)

    def drill(self, environment: Mapping[str, str], *, run_id: str | None = None) -> None:
        """Set these variables in the sandboxes of run `run_id` (of every run, without one) from now
        on; a variable set to "" is no longer set."""
        with self._lock:
            variables = self._drills.get(run_id, {}) | dict(environment)
            self._drills[run_id] = {name: value for name, value in variables.items() if value}

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """No invocation starts until the block ends (one that has started runs on)."""
        self._open.clear()
        try:
            yield
        finally:
            self._open.set()

    def tally(self, kind: str) -> Tally:
        """The counts of `kind` the sandboxes report from now on ("model_calls": by prompt's first line)."""
        return Tally(self, kind)

    def function_named(self, handler: str) -> LocalFunction:
        return next(f for f in self.functions.values() if f.handler == handler)

    role_arn = LOCAL_ROLE

    def add_function(
        self,
        name: str,
        handler: str,
        environment: Mapping[str, str],
        *,
        timeout_seconds: int = 60,
        code: tuple[Path, ...] = (REPO / "functions", REPO),
    ) -> LocalFunction:
        """Create a function that is not in the template (benchmarks, tests); its code comes from
        `code`, by default this repository's sources."""
        arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
        boto3.client("lambda").create_function(
            FunctionName=name,
            Runtime="python3.14",
            Role=LOCAL_ROLE,
            Handler=handler,
            Code={"ZipFile": _empty_zip()},
            Timeout=timeout_seconds,
            Environment={"Variables": dict(environment)},
        )
        self.functions[name] = LocalFunction(name, handler, code, dict(environment), timeout_seconds, arn=arn)
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
                ExplicitAuthFlows=props.get("ExplicitAuthFlows", ["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]),
            )["UserPoolClient"]
            self._physical[logical_id] = app_client["ClientId"]

    def _create_event_buses(self) -> None:
        client = boto3.client("events")
        for logical_id, resource in resources_of_type(self.template, "AWS::Events::EventBus").items():
            name = resource["Properties"]["Name"]
            self._arns[logical_id] = client.create_event_bus(Name=name)["EventBusArn"]
            self._physical[logical_id] = name  # Ref of an event bus is its name

    def _create_secrets(self) -> None:
        """Each secret with a value generated as its GenerateSecretString says (a fresh one per cloud)."""
        client = boto3.client("secretsmanager")
        for logical_id, resource in resources_of_type(self.template, "AWS::SecretsManager::Secret").items():
            generate = resource.get("Properties", {}).get("GenerateSecretString", {})
            generated = secrets.token_urlsafe(36)
            if key := generate.get("GenerateStringKey"):
                value = json.dumps(json.loads(generate.get("SecretStringTemplate", "{}")) | {key: generated})
            else:
                value = generated
            arn = client.create_secret(Name=f"sutram-{logical_id}", SecretString=value)["ARN"]
            self._physical[logical_id] = self._arns[logical_id] = arn  # Ref of a secret is its ARN

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
            if not str(props.get("Runtime", "")).startswith("python"):
                continue  # CDK's own helper functions (Node.js custom resources)
            if logical_id not in self.assets:
                raise ValueError(f"no code asset for the Lambda function {logical_id} of the template")
            handler = props["Handler"]
            environment = self._resolve(props.get("Environment", {}).get("Variables", {}))
            client.create_function(
                FunctionName=logical_id,
                Runtime=props.get("Runtime", "python3.14"),
                Role=LOCAL_ROLE,
                Handler=handler,
                Code={"ZipFile": placeholder},
                Timeout=props.get("Timeout", 3),
                Environment={"Variables": environment},
            )
            self.functions[logical_id] = LocalFunction(
                name=logical_id,
                handler=handler,
                code=(self.assets[logical_id],),
                environment={key: str(value) for key, value in environment.items()},
                timeout_seconds=props.get("Timeout", 3),
                memory_mb=props.get("MemorySize", 128),
                runtime=props["Runtime"],
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
        with DEFINITIONS:  # not while an execution starts on a version (moto_patches.start_executions_on_versions)
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
        """This process (tests, benchmarks, the demo) reads the deployment as the API function does,
        through sutram.wiring."""
        for function in self.functions.values():  # their variables agree (same table, same bucket)
            os.environ.update(self.deployed_environment(function))
        from sutram import wiring

        wiring.reset()


def _run_id(event: Any) -> str | None:
    """The run an invocation works for: every task of a run's state machine names it."""
    run = event.get("run") if isinstance(event, dict) else None
    return run.get("run_id") if isinstance(run, dict) else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


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
