"""The Sutram stack: composes storage, the functions, one state machine per workflow, and the API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from infra.api import Api
from infra.bundling import lambda_code
from infra.functions import RuntimeConfig, SutramFunctions
from infra.storage import Storage
from infra.versions import LiveVersion
from infra.workflow import WorkflowStateMachine
from sutram.definition import load_all


class SutramStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, workflows_dir: Path, bundle: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        storage = Storage(self, "Storage")
        config = RuntimeConfig.from_context(self.node)
        functions = SutramFunctions(
            self,
            "Functions",
            code=lambda_code(workflows_dir, bundle=bundle, runtime=config.lambda_python),
            table=storage.table,
            bucket=storage.bucket,
            config=config,
        )
        self.workflows = self._build_workflows(workflows_dir, functions, storage)
        self.versions = {
            name: LiveVersion(self, f"Versions-{name}", state_machine=workflow.state_machine)
            for name, workflow in self.workflows.items()
        }
        functions.let_api_run(self.versions)
        api = Api(self, "Api", handler=functions.api)
        self._build_outputs(api, storage)

    def _build_workflows(
        self, workflows_dir: Path, functions: SutramFunctions, storage: Storage
    ) -> dict[str, WorkflowStateMachine]:
        definitions = load_all(workflows_dir)
        if not definitions:
            raise ValueError(f"{workflows_dir}: no workflow definitions (*.yaml) to deploy")
        return {
            definition.name: WorkflowStateMachine(
                self,
                f"Workflow-{definition.name}",
                definition=definition,
                step_function=functions.step,
                finish_function=functions.finish,
                bucket=storage.bucket,
            )
            for definition in definitions
        }

    def _build_outputs(self, api: Api, storage: Storage) -> None:
        CfnOutput(self, "ApiUrl", value=api.rest_api.url)
        CfnOutput(self, "UserPoolId", value=api.user_pool.user_pool_id)
        CfnOutput(self, "UserPoolClientId", value=api.client.user_pool_client_id)
        CfnOutput(self, "TableName", value=storage.table.table_name)
        CfnOutput(self, "BucketName", value=storage.bucket.bucket_name)
