"""The single-table layout. Every key starts with the tenant, so no query can cross tenants.

pk                            sk            item
TENANT#<t>#RUN#<run id>       RUN           the run: workflow, status, input, output
TENANT#<t>#RUN#<run id>       STEP#<path>   one step's checkpoint: lease, result, usage
gsi1pk TENANT#<t>, gsi1sk <created at>#<run id>   lists a tenant's runs, newest first
"""

from __future__ import annotations

import re

TENANT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
RUN_SK = "RUN"
STEP_PREFIX = "STEP#"
RUNS_INDEX = "gsi1"


def run_pk(tenant: str, run_id: str) -> str:
    return f"TENANT#{tenant}#RUN#{run_id}"


def step_sk(step_path: str) -> str:
    return f"{STEP_PREFIX}{step_path}"


def tenant_runs_pk(tenant: str) -> str:
    return f"TENANT#{tenant}"
