"""Local Lambda sandboxes: worker processes that run a function's code from its asset, kept warm
and reused like Lambda's execution environments.

    Sandboxes.invoke(function, environment, event)
      ├─ an idle warm sandbox of that function and environment, or a new one (a cold start: the
      │  worker imports the handler from the asset before it takes the request)
      ├─ the request goes to the worker (localcloud/bootstrap.py); its answer comes back
      └─ what Lambda reports:
           the handler's result                    payload, no function error
           a handler that raised                   {"errorType": <exception class>, ...}, "Unhandled"
           a runtime that exited (sys.exit, kill)  Runtime.ExitError, "Unhandled"; the sandbox is gone
           past the function's timeout             Sandbox.Timedout, "Unhandled"; the sandbox is killed

Each sandbox runs one invocation at a time; a function runs up to `concurrency` at once (more wait
for a sandbox to free up, where Lambda would throttle), so the iterations of a Map state and the
branches of a Parallel state really run side by side.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

BOOTSTRAP = Path(__file__).with_name("bootstrap.py")
#: Receives each line a sandbox writes to stderr (its logs): (function name, line).
LogSink = Callable[[str, str], None]
INIT_TIMEOUT_SECONDS = 60.0  # Lambda allows 10 s to initialise; a loaded 2-core machine needs more
FUNCTION_CONCURRENCY = 16  # sandboxes of one function (and environment) at once


@dataclass(frozen=True)
class LocalFunction:
    """A function as the template declares it, and where its code is on this machine."""

    name: str
    handler: str  # module.attribute, the template's Handler
    code: tuple[Path, ...]  # the asset directory (LAMBDA_TASK_ROOT) first
    environment: Mapping[str, str]  # the template's Environment, resolved
    timeout_seconds: int
    memory_mb: int = 128
    runtime: str = "python3.14"
    arn: str = ""


@dataclass
class Invocation:
    payload: Any
    error: str | None  # "Unhandled" for a function error, as the X-Amz-Function-Error header says
    observed: dict[str, dict[str, int]] = field(default_factory=dict)  # counts the extensions report


def lambda_environment(function: LocalFunction) -> dict[str, str]:
    """The variables the Lambda service sets in every sandbox of `function`."""
    task_root = str(function.code[0])
    return {
        "AWS_LAMBDA_FUNCTION_NAME": function.name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function.name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": f"local/[$LATEST]{function.name}",
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{function.runtime}",
        "LAMBDA_TASK_ROOT": task_root,
        "_HANDLER": function.handler,
        "TZ": ":UTC",
        "LANG": "en_US.UTF-8",
        "PATH": os.defpath,
    }


class Sandbox:
    """One worker process: started cold, then warm until it exits or is killed."""

    def __init__(
        self, function: LocalFunction, environment: Mapping[str, str], layout: Mapping[str, Any], log: LogSink
    ) -> None:
        self.function = function
        self.process = subprocess.Popen(
            [sys.executable, "-I", "-S", str(BOOTSTRAP), json.dumps(layout)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(environment),
            cwd=function.code[0],
        )
        threading.Thread(target=self._forward_logs, args=(log,), daemon=True).start()
        self._input: IO[bytes] = self.process.stdin  # type: ignore[assignment]
        self._results = self.process.stdout.fileno()  # type: ignore[union-attr]
        self._buffer = bytearray()
        self._ready = False

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def invoke(self, event: Any) -> Invocation:
        request_id = str(uuid.uuid4())
        try:
            if not self._ready:
                ready = self._next_line(time.monotonic() + INIT_TIMEOUT_SECONDS)
                if ready is None:
                    return self._exited(request_id)
                self._ready = True
            deadline_ms = int(time.time() * 1000) + self.function.timeout_seconds * 1000
            request = {"event": event, "request_id": request_id, "function_arn": self.function.arn}
            self._input.write(json.dumps(request | {"deadline_ms": deadline_ms}).encode() + b"\n")
            self._input.flush()
            deadline = time.monotonic() + self.function.timeout_seconds
            line = self._next_line(deadline)
            observed = {}
            if line is not None and (last := json.loads(line)).get("exiting"):
                observed, line = last["observed"], self._next_line(deadline)
        except BrokenPipeError:
            return self._exited(request_id)
        except TimeoutError:
            self.kill()
            message = f"RequestId: {request_id} Error: Task timed out after {self.function.timeout_seconds:.2f} seconds"
            return Invocation({"errorType": "Sandbox.Timedout", "errorMessage": message}, "Unhandled")
        if line is None:
            return self._exited(request_id, observed)
        answer = json.loads(line)
        return Invocation(answer["payload"], answer["error"], answer["observed"])

    def kill(self) -> None:
        if self.alive:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()

    def _forward_logs(self, log: LogSink) -> None:
        assert self.process.stderr is not None
        with self.process.stderr as lines:
            for line in lines:
                log(self.function.name, line.decode("utf-8", "replace").rstrip("\n"))

    def _exited(self, request_id: str, observed: dict[str, dict[str, int]] | None = None) -> Invocation:
        code = self.process.wait()
        self.kill()
        status = f"signal: {-code}" if code < 0 else f"exit status {code}"
        message = f"RequestId: {request_id} Error: Runtime exited with error: {status}"
        return Invocation({"errorType": "Runtime.ExitError", "errorMessage": message}, "Unhandled", observed or {})

    def _next_line(self, deadline: float) -> bytes | None:
        """The next line on the result channel; None if the worker ended first."""
        while (end := self._buffer.find(b"\n")) < 0:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self._results], [], [], remaining)[0]:
                raise TimeoutError
            chunk = os.read(self._results, 1 << 20)
            if not chunk:
                return None
            self._buffer += chunk
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        return line


class Sandboxes:
    """The warm sandboxes of every function, by function and environment."""

    def __init__(
        self,
        *,
        runtime_paths: list[str],
        extensions: list[Path],
        log: LogSink,
        concurrency: int = FUNCTION_CONCURRENCY,
    ) -> None:
        self._runtime_paths = runtime_paths
        self._log = log
        self._extensions = [str(path) for path in extensions]
        self._concurrency = concurrency
        self._idle: dict[tuple[str, ...], list[Sandbox]] = {}
        self._running: set[Sandbox] = set()
        self._slots: dict[tuple[str, ...], threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()
        self.started = 0  # cold starts

    def invoke(self, function: LocalFunction, environment: Mapping[str, str], event: Any) -> Invocation:
        key = (function.name, *sorted(f"{name}={value}" for name, value in environment.items()))
        with self._lock:
            slots = self._slots.setdefault(key, threading.BoundedSemaphore(self._concurrency))
        with slots:
            sandbox = self._take(key, function, environment)
            try:
                return sandbox.invoke(event)
            finally:
                with self._lock:
                    self._running.discard(sandbox)
                    if sandbox.alive:
                        self._idle.setdefault(key, []).append(sandbox)

    def _take(self, key: tuple[str, ...], function: LocalFunction, environment: Mapping[str, str]) -> Sandbox:
        with self._lock:
            idle = self._idle.get(key, [])
            while idle:
                sandbox = idle.pop()
                if sandbox.alive:
                    self._running.add(sandbox)
                    return sandbox
                sandbox.kill()
            self.started += 1
        layout = {"code": [str(path) for path in function.code], "runtime": self._runtime_paths}
        sandbox = Sandbox(function, environment, layout | {"extensions": self._extensions}, self._log)
        with self._lock:
            self._running.add(sandbox)
        return sandbox

    def stop(self) -> None:
        """Kill every sandbox, idle or running."""
        with self._lock:
            running, idle = list(self._running), [s for sandboxes in self._idle.values() for s in sandboxes]
            self._idle.clear()
        for sandbox in running:
            sandbox.process.kill()  # its invocation ends as Runtime.ExitError
        for sandbox in idle:
            sandbox.kill()
