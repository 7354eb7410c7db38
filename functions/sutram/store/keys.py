"""The single-table layout. Every key starts with the tenant, so no query can cross tenants.

pk                              sk            item
TENANT#<t>#RUN#<run id>         RUN           the run: workflow, status, input, output (store.runs)
TENANT#<t>#RUN#<run id>         STEP#<path>   one step's checkpoint: lease, result, usage (store.checkpoints)
TENANT#<t>#APPROVAL#<id>        APPROVAL      an approval: proposal, group, deadline, decision (store.approvals)

The `gsi1` index lists a tenant's items newest first:
gsi1pk TENANT#<t>               gsi1sk <created at>#<run id>                 runs
gsi1pk TENANT#<t>#APPROVALS     gsi1sk <status>#<created at>#<approval id>   approvals, by status
"""

from __future__ import annotations

import re

TENANT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
RUN_SK = "RUN"
STEP_PREFIX = "STEP#"
APPROVAL_SK = "APPROVAL"
INDEX = "gsi1"
INDEX_KEYS = frozenset({"pk", "sk", "gsi1pk", "gsi1sk"})


def run_pk(tenant: str, run_id: str) -> str:
    return f"TENANT#{tenant}#RUN#{run_id}"


def run_key(tenant: str, run_id: str) -> dict[str, str]:
    return {"pk": run_pk(tenant, run_id), "sk": RUN_SK}


def step_sk(step_path: str) -> str:
    return f"{STEP_PREFIX}{step_path}"


def step_path(sk: str) -> str:
    return sk.removeprefix(STEP_PREFIX)


def runs_index_pk(tenant: str) -> str:
    return f"TENANT#{tenant}"


def runs_index_sk(created_at: str, run_id: str) -> str:
    return f"{created_at}#{run_id}"


def approval_pk(tenant: str, approval_id: str) -> str:
    return f"TENANT#{tenant}#APPROVAL#{approval_id}"


def approval_key(tenant: str, approval_id: str) -> dict[str, str]:
    return {"pk": approval_pk(tenant, approval_id), "sk": APPROVAL_SK}


def approvals_index_pk(tenant: str) -> str:
    return f"TENANT#{tenant}#APPROVALS"


def approvals_index_sk(status: str, created_at: str, approval_id: str) -> str:
    return f"{status}#{created_at}#{approval_id}"
