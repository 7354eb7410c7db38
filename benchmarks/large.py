"""Large data on the local cloud: the largest run input and maps that run, their wall times, and
the largest state any of their executions carried.

    python -m benchmarks.large [--documents 48] [--document-kb 100] [--inline-items 1000] [--items 2000]

Every run starts with a POST through the local API (real HTTP, the API function in its sandbox),
and is read until it ends with GET /runs/{id}. Three runs:
- a run input just under the API's 5 MiB: `--documents` documents of `--document-kb` KB, routed
  by a choice on the input, renamed by a transform and counted by an inline map;
- an inline map over `--inline-items` short texts kept in state (the longest list an inline map
  carries is 64 KiB);
- a distributed map over `--items` texts, read from S3 (the list is larger than a state).
The largest state is the longest input of any state the top-level execution entered, in bytes.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3
import requests
import yaml

WORD_COUNT = {"id": "words", "type": "tool", "tool": "word_frequencies", "input": {"text": "$.item", "top": 1}}

DEFINITIONS: list[dict[str, Any]] = [
    {
        "name": "large-input",
        "steps": [
            {
                "id": "route",
                "type": "choice",
                "choices": [
                    {
                        "when": {"var": "$.input.kind", "equals": "batch"},
                        "then": [{"id": "named", "type": "transform", "output": {"customer": "$.input.customer.name"}}],
                    }
                ],
                "otherwise": [{"id": "unnamed", "type": "transform", "output": {"customer": "nobody"}}],
            },
            {"id": "each", "type": "map", "items": "$.input.documents", "max_concurrency": 10, "steps": [WORD_COUNT]},
            {"id": "gather", "type": "transform", "output": {"route": "$.steps.route", "counts": "$.steps.each"}},
        ],
    },
    {
        "name": "inline-map",
        "steps": [
            {"id": "each", "type": "map", "items": "$.input.texts", "max_concurrency": 40, "steps": [WORD_COUNT]}
        ],
    },
    {
        "name": "distributed-map",
        "steps": [
            {
                "id": "each",
                "type": "map",
                "items": "$.input.texts",
                "distributed": True,
                "max_concurrency": 40,
                "steps": [WORD_COUNT],
            }
        ],
    },
]


def largest_state(execution_arn: str) -> int:
    sfn = boto3.client("stepfunctions")
    largest, query = 0, {"executionArn": execution_arn, "maxResults": 1000}
    while True:
        page = sfn.get_execution_history(**query)
        for event in page["events"]:
            if event["type"].endswith("StateEntered"):
                largest = max(largest, len(event["stateEnteredEventDetails"].get("input", "")))
        if "nextToken" not in page:
            return largest
        query["nextToken"] = page["nextToken"]


def run(session: Any, workflow: str, run_input: dict[str, Any], timeout: float = 1800) -> dict[str, Any]:
    from sutram import wiring

    headers = {"Authorization": f"Bearer {session.tokens['ada']}", "Content-Type": "application/json"}
    body = json.dumps({"input": run_input}).encode()
    started = time.perf_counter()
    response = requests.post(f"{session.api_url}/workflows/{workflow}/runs", data=body, headers=headers, timeout=120)
    posted = time.perf_counter() - started
    assert response.status_code == 201, response.text
    run_id = response.json()["run_id"]
    deadline = time.monotonic() + timeout
    while True:
        status = requests.get(f"{session.api_url}/runs/{run_id}", headers=headers, timeout=60).json()["status"]
        if status != "RUNNING" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    wall = time.perf_counter() - started
    assert status == "SUCCEEDED", status
    record = wiring.runs_backend().runs.get("acme", run_id)
    assert record is not None and record.execution_arn is not None
    return {"bytes": len(body), "post_s": posted, "wall_s": wall, "state": largest_state(record.execution_arn)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=48)
    parser.add_argument("--document-kb", type=int, default=100)
    parser.add_argument("--inline-items", type=int, default=1000)
    parser.add_argument("--items", type=int, default=2000)
    options = parser.parse_args()

    from localcloud.session import start

    workflows = Path(tempfile.mkdtemp(prefix="bench-large-"))
    for definition in DEFINITIONS:
        (workflows / f"{definition['name']}.yaml").write_text(yaml.safe_dump(definition, sort_keys=False))
    print("synthesizing and starting the local cloud ...", flush=True)
    session = start(workflows_dir=workflows)
    try:
        word = "lorem ipsum dolor sit amet "
        document = word * (options.document_kb * 1024 // len(word))
        results = {
            f"input: {options.documents} documents of {options.document_kb} KB": run(
                session,
                "large-input",
                {"kind": "batch", "customer": {"name": "Acme"}, "documents": [document] * options.documents},
            ),
            f"inline map: {options.inline_items} items": run(
                session, "inline-map", {"texts": [f"text {index} " + word for index in range(options.inline_items)]}
            ),
            f"distributed map: {options.items} items": run(
                session, "distributed-map", {"texts": [f"text {index} " + word * 8 for index in range(options.items)]}
            ),
        }
    finally:
        session.stop()
    print(f"\n{'run':<40}{'request bytes':>15}{'POST (s)':>10}{'wall (s)':>10}{'largest state':>15}")
    print("-" * 90)
    for name, figures in results.items():
        print(
            f"{name:<40}{figures['bytes']:>15,}{figures['post_s']:>10.2f}{figures['wall_s']:>10.1f}"
            f"{figures['state']:>15,}"
        )


if __name__ == "__main__":
    main()
