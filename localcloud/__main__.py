"""`python -m localcloud serve|demo`: Sutram on this machine, no AWS account, no Docker, no network.

serve  start the local cloud and the API on 127.0.0.1 until Ctrl-C; the `sutram` CLI finds it.
demo   analyse three documents with the document-analysis workflow through the API, with every
       run's `summarise` step killed right after its model call, and show that Step Functions
       retried it and the model was called once; then a procurement run that waits for finance's
       approval, and a support agent whose refund call waits for one, both given (with an edit)
       through the API.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import boto3

from cli.client import ApiClient
from cli.config import Config
from cli.display import follow
from localcloud import session as local
from sutram import wiring

DOCUMENTS = Path(__file__).parent / "documents"
CRASH = "summarise@after_model_call"


def serve(port: int) -> int:
    print("synthesizing the CDK app and starting the local cloud ...", flush=True)
    session = local.start(port=port)
    config = local.write_cli_config(session)
    print(f"API      {session.api_url}")
    print(f"tenants  acme (user ada), globex (user grace); the CLI uses ada's token from {config}")
    print('try      sutram run document-analysis --input \'{"document": {"title": "t", "content": "Hello"}}\' --follow')
    print("Ctrl-C to stop (everything is in memory and goes away)")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        session.stop()
    return 0


def demo() -> int:
    print("1. synthesizing the CDK app and starting the local cloud (moto: DynamoDB, S3, Step Functions, Lambda)")
    session = local.start()
    session.cloud.inject_faults(CRASH)
    model_calls = session.cloud.tally("model_calls")
    client = ApiClient(Config(api_url=session.api_url, token=session.tokens["ada"]))
    print(f"   API on {session.api_url}; state machines: {', '.join(sorted(session.cloud.state_machines))}")
    print(f"2. fault injection: SUTRAM_FAULTS={CRASH}")
    print("   every run's summarise step exits like a killed Lambda runtime right after its model answers\n")

    failed = 0
    for number, path in enumerate(sorted(DOCUMENTS.glob("*.md")), start=3):
        title = path.read_text().splitlines()[0].lstrip("# ").strip()
        document = {"title": title, "content": path.read_text(), "format": "markdown"}
        _, run = client.request(
            "POST",
            "/workflows/document-analysis/runs",
            body={"input": {"document": document}},
            headers={"Idempotency-Key": f"demo-{path.stem}"},
        )
        print(f"{number}. POST /workflows/document-analysis/runs  ({path.name})")
        failed += follow(client, run["run_id"], sys.stdout, as_json=False) != 0
        print(_crash_verdict(run["run_id"], title, model_calls.counts))
        report = next(s for s in client.get(f"/runs/{run['run_id']}/steps")["steps"] if s["id"] == "report")
        output = report["output"]
        print(f"   summary:  {output['summary']}")
        print(f"   entities: {', '.join(entity['name'] for entity in output['entities'])}\n")
    number += 1
    failed += _decided_through_api(
        client,
        number,
        "procurement",
        {"item": "laptop", "needed": 10},
        "10 laptops; finance must approve the order",
        {"quantity": 5},
        "5 now, the rest next quarter",
    )
    print()
    failed += _decided_through_api(
        client,
        number + 1,
        "customer-support",
        {"customer": "Ada", "order_id": "A-1001", "message": "My standing desk is four days late."},
        "a late desk; the support agent's refund call needs an approver",
        {"amount_cents": 3200},
        "half now; the carrier owes us the rest",
        show="investigate/turn-0002/call-000",
    )
    session.stop()
    print("All runs succeeded; no model call was paid twice." if not failed else f"{failed} run(s) failed.")
    return 1 if failed else 0


def _decided_through_api(
    client: ApiClient,
    number: int,
    workflow: str,
    run_input: dict[str, Any],
    why: str,
    edit: dict[str, Any],
    comment: str,
    show: str | None = None,
) -> int:
    """An approval gate: the run waits at zero compute until ada decides, editing the proposal,
    through the API."""
    print(f"{number}. POST /workflows/{workflow}/runs  ({why})")
    _, run = client.request(
        "POST",
        f"/workflows/{workflow}/runs",
        body={"input": run_input},
        headers={"Idempotency-Key": f"demo-{workflow}"},
    )
    deadline = time.monotonic() + 30
    while not (
        pending := [
            a for a in client.get("/approvals", {"status": "pending"})["approvals"] if a["run_id"] == run["run_id"]
        ]
    ):
        if time.monotonic() > deadline:
            print("   no approval request arrived")
            return 1
        time.sleep(0.2)
    approval = pending[0]
    print(f"   waiting for {approval['group']} at {approval['step_path']}: {approval['summary']}")
    print(f"   proposal: {json.dumps(approval['proposal'])}")
    client.request(
        "POST",
        f"/approvals/{approval['approval_id']}/decision",
        body={"decision": "approve", "comment": comment, "proposal": approval["proposal"] | edit},
    )
    edits = ", ".join(f"{name} edited to {value}" for name, value in edit.items())
    print(f"   POST /approvals/{{id}}/decision: approved by ada with {edits}")
    status = follow(client, run["run_id"], sys.stdout, as_json=False)
    if show is not None:  # the output of the step that acted on the decision
        step = next(s for s in client.get(f"/runs/{run['run_id']}/steps")["steps"] if s["id"] == show)
        print(f"   {show}: {step['output']['content'] if isinstance(step['output'], dict) else step['output']}")
    return status


def _crash_verdict(run_id: str, title: str, calls: dict[str, int]) -> str:
    """What happened to `summarise`: Step Functions' view (invocations) next to the model's (calls)."""
    record = wiring.runs_backend().runs.get("acme", run_id)
    assert record is not None and record.execution_arn is not None
    events = boto3.client("stepfunctions").get_execution_history(executionArn=record.execution_arn, maxResults=1000)[
        "events"
    ]
    by_id = {event["id"]: event for event in events}

    def state_of(event: dict[str, Any] | None) -> str | None:
        """The state an event belongs to. `summarise` runs in a parallel branch, next to `entities`,
        and the branches' events interleave: follow the event's chain back to its state's entry."""
        while event is not None and not event["type"].endswith("StateEntered"):
            event = by_id.get(event.get("previousEventId"))
        return None if event is None else event["stateEnteredEventDetails"]["name"]

    summarise = [event for event in events if state_of(event) == "summarise"]
    invocations = sum(1 for event in summarise if event["type"] == "LambdaFunctionScheduled")
    errors = [e["lambdaFunctionFailedEventDetails"]["error"] for e in summarise if e["type"] == "LambdaFunctionFailed"]
    model = calls.get(f'Summarise the document "{title}" in two sentences.', 0)
    return (
        f"   summarise: Step Functions invoked it {invocations}x (failed: {', '.join(errors) or 'none'}, then "
        f"retried); the model was called {model}x; the retry returned the recorded answer"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m localcloud", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="run the local cloud and API until Ctrl-C")
    serve_parser.add_argument("--port", type=int, default=8765)
    commands.add_parser("demo", help="the document-analysis demo with an injected crash")
    options = parser.parse_args()
    return serve(options.port) if options.command == "serve" else demo()


if __name__ == "__main__":
    sys.exit(main())
