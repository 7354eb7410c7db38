"""Runtime configuration, read once from the environment into a typed model."""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_LEASE_MARGIN_SECONDS = 30


class Settings(BaseModel):
    model_config = ConfigDict(populate_by_name=True, frozen=True)

    table_name: str = Field(alias="SUTRAM_TABLE")
    bucket_name: str = Field(alias="SUTRAM_BUCKET")
    # Values whose JSON is larger than this go to S3 and travel as references.
    offload_threshold_bytes: int = Field(8192, alias="SUTRAM_OFFLOAD_THRESHOLD_BYTES", ge=256, le=200_000)
    # Added to a step's timeout to form its lease: a crashed attempt's lease expires after this.
    lease_margin_seconds: int = Field(DEFAULT_LEASE_MARGIN_SECONDS, alias="SUTRAM_LEASE_MARGIN_SECONDS", ge=0)
    default_model_provider: str = Field("scripted", alias="SUTRAM_MODEL_PROVIDER")
    default_model_id: str = Field("sutram.scripted-v1", alias="SUTRAM_MODEL_ID")
    openai_base_url: str = Field("https://api.openai.com/v1", alias="SUTRAM_OPENAI_BASE_URL")
    # The Secrets Manager secret (name or ARN) holding the endpoint's API key; "" sends none.
    openai_api_key_secret: str = Field("", alias="SUTRAM_OPENAI_API_KEY_SECRET")
    # Comma-separated host names the http_fetch tool may call.
    http_allowlist: str = Field("", alias="SUTRAM_HTTP_ALLOWLIST")
    # Resilience drills: "step@point[,step@point]", see sutram.faults.
    faults: str = Field("", alias="SUTRAM_FAULTS")
    # Where `approval` steps publish "Approval requested" events, and an optional chat webhook.
    event_bus_name: str = Field("default", alias="SUTRAM_EVENT_BUS")
    approval_webhook_url: str = Field("", alias="SUTRAM_APPROVAL_WEBHOOK_URL")
    # JSON object: workflow name -> ARN of the state machine that runs it (set by the stack).
    state_machines: dict[str, str] = Field(default_factory=dict, alias="SUTRAM_STATE_MACHINES")
    # JSON object: workflow name -> ARN of its alias, which routes new runs to the live version.
    workflow_aliases: dict[str, str] = Field(default_factory=dict, alias="SUTRAM_WORKFLOW_ALIASES")
    # Where the workflow definitions (<name>.yaml) are bundled; read to validate run input.
    workflows_dir: Path = Field(Path("workflows"), alias="SUTRAM_WORKFLOWS_DIR")
    # HMAC-SHA256 key of approval callback links (sutram.approvals.links). In AWS the stack passes a Secrets
    # Manager secret to the API function (docs/api.md). Empty: no link is made or accepted.
    # The Secrets Manager secret whose keys sign approval callback links (sutram.store.signing_keys).
    callback_secret_arn: str = Field("", alias="SUTRAM_CALLBACK_SECRET_ARN")
    # The API's public base URL, for the signed links in approval notifications (empty: relative links).
    public_api_url: str = Field("", alias="SUTRAM_PUBLIC_API_URL")

    @field_validator("state_machines", "workflow_aliases", mode="before")
    @classmethod
    def _parse_json_map(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    @property
    def http_allowed_hosts(self) -> frozenset[str]:
        return frozenset(h.strip().lower() for h in self.http_allowlist.split(",") if h.strip())


@cache
def get_settings() -> Settings:
    return Settings.model_validate(dict(os.environ))
