"""How concurrent the local cloud's Lambda functions are, and how long the local cloud takes to start.

    python -m benchmarks.concurrency [--runs 3] [--starts 3]

1. A map of 8 iterations whose one tool step sleeps 1 s, with max_concurrency 8: the wall time of
   the run, from StartExecution to the end of the execution. On AWS it is about 1 s, since each
   iteration's Lambda runs in a sandbox of its own; the figure says how close the local cloud comes.
2. `python -m localcloud serve` (what `make serve` runs) until the API answers an HTTP request
   (GET /openapi.json; without a token the answer is 401, which is an answer):
   synthesizing the CDK app, provisioning moto from the template, serving.
Times are medians over the runs.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any

import boto3

from benchmarks.agent import run
from benchmarks.cloud import local_cloud
from benchmarks.tools import SLEEP_SECONDS

ITERATIONS = 8


def map_definition() -> dict[str, Any]:
    return {
        "name": "bench-map",
        "steps": [
            {"id": "items", "type": "transform", "output": {"list": list(range(ITERATIONS))}},
            {
                "id": "fan",
                "type": "map",
                "items": "$.steps.items.list",
                "max_concurrency": ITERATIONS,
                "steps": [{"id": "nap", "type": "tool", "tool": "bench_sleep", "input": {"item": "$.item"}}],
            },
        ],
    }


def map_wall_times(runs: int) -> list[float]:
    local_cloud([map_definition()], prefix="sutram-bench-concurrency-")
    from sutram import wiring

    wiring.reset()
    sfn = boto3.client("stepfunctions")
    times = []
    for _ in range(runs):
        run_id = run("bench-map")
        record = wiring.runs_backend().runs.get("bench", run_id)
        assert record is not None and record.execution_arn is not None
        execution = sfn.describe_execution(executionArn=record.execution_arn)
        while execution["status"] == "RUNNING":  # the run is recorded a few events before the execution ends
            time.sleep(0.01)
            execution = sfn.describe_execution(executionArn=record.execution_arn)
        times.append((execution["stopDate"] - execution["startDate"]).total_seconds())
    return times


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_start_seconds() -> float:
    """`python -m localcloud serve` until its API answers, whatever the status."""
    port = _free_port()
    started = time.perf_counter()
    server = subprocess.Popen(
        [sys.executable, "-m", "localcloud", "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=os.environ | {"JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1"},
    )
    deadline = started + 300
    try:
        while time.perf_counter() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/openapi.json", timeout=1):
                    return time.perf_counter() - started
            except urllib.error.HTTPError:  # an answer all the same (401: no token)
                return time.perf_counter() - started
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if server.poll() is not None:
                    raise RuntimeError("python -m localcloud serve exited before its API answered") from None
                time.sleep(0.05)
        raise TimeoutError("python -m localcloud serve did not answer within 300 s")
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="runs of the map workflow")
    parser.add_argument("--starts", type=int, default=3, help="starts of the local cloud")
    options = parser.parse_args()

    starts = [serve_start_seconds() for _ in range(options.starts)]
    walls = map_wall_times(options.runs)
    median = statistics.median(walls)
    print(f"\nmap of {ITERATIONS} iterations, one {SLEEP_SECONDS:g} s tool step each, max_concurrency {ITERATIONS}:")
    print(f"  wall time, median of {options.runs}: {median:.2f} s  (runs: {', '.join(f'{w:.2f}' for w in walls)})")
    print(f"  iterations running at once, on average: {ITERATIONS * SLEEP_SECONDS / median:.2f} of {ITERATIONS}")
    print(f"\nlocal cloud start (python -m localcloud serve until the API answers), median of {options.starts}:")
    print(f"  {statistics.median(starts):.1f} s  (starts: {', '.join(f'{s:.1f}' for s in starts)})")


if __name__ == "__main__":
    main()
