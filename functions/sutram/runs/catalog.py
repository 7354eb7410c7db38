"""The workflows this deployment runs: a definition file, a state machine and its alias for each."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path

from aws_lambda_powertools import Logger

from sutram.definition import WORKFLOW_NAME, DefinitionError, WorkflowDefinition, load_definition
from sutram.definition.reads import Path as StatePath
from sutram.definition.reads import kept_paths
from sutram.runs.errors import WorkflowNotFound

logger = Logger(child=True)


@dataclass(frozen=True)
class Workflow:
    definition: WorkflowDefinition
    state_machine_arn: str
    alias_arn: str  # routes new runs to the live version

    @cached_property
    def kept_input(self) -> list[StatePath]:
        """The parts of a run's input that Step Functions reads itself (sutram.definition.reads)."""
        return kept_paths(self.definition).get("input", [])

    def version_arn(self, version: int) -> str:
        return f"{self.state_machine_arn}:{version}"


class WorkflowCatalog:
    def __init__(self, directory: Path, state_machines: dict[str, str], aliases: dict[str, str]) -> None:
        self._directory = directory
        self._state_machines = state_machines
        self._aliases = aliases

    def get(self, name: str) -> Workflow:
        arn, alias_arn = self._state_machines.get(name), self._aliases.get(name)
        if arn is None or alias_arn is None or not re.match(WORKFLOW_NAME, name):
            raise WorkflowNotFound(f"no workflow named {name!r}")
        # A definition's file is named after it, with "-" or "_" (see load_definition).
        candidates = [self._directory / f"{stem}.yaml" for stem in (name, name.replace("-", "_"))]
        path = next((candidate for candidate in candidates if candidate.exists()), None)
        if path is None:
            logger.error("a deployed workflow has no definition file", extra={"workflow": name})
            raise WorkflowNotFound(f"no workflow named {name!r}")
        return Workflow(_definition(path), arn, alias_arn)


@cache
def _definition(path: Path) -> WorkflowDefinition:
    try:
        return load_definition(path)
    except DefinitionError:
        logger.exception("a deployed workflow definition does not load")
        raise
