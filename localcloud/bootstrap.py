"""The runtime inside one local Lambda sandbox: a worker process that loads a function's handler
from its code asset and runs one invocation at a time, as the Lambda Python runtime does.

    python -I -S localcloud/bootstrap.py '{"code": [...], "runtime": [...], "extensions": [...]}'
                                                            (started by localcloud.sandboxes)

The process starts with nothing of this machine on its path: `-I -S` leave the standard library
only. In front of it go the `code` directories (the function's asset, LAMBDA_TASK_ROOT, first, as
in Lambda); behind it the `runtime` directories, which stand for what the Lambda runtime provides
(boto3, botocore) and, for an asset built without its dependencies, the dependencies. The handler
is `_HANDLER` (`module.attribute`); the environment is the function's and nothing else.

Protocol, one JSON document per line: after loading the handler the worker writes {"ready": true}
on the result channel, then for each request {"event", "request_id", "function_arn", "deadline_ms"} read from stdin
it writes {"payload", "error", "observed"}: the handler's result, or an error document as Lambda
reports it ({"errorType", "errorMessage", ...}) with `error` "Unhandled". File descriptor 1 is the
result channel; the handler's own stdout (prints, Powertools logs) goes to stderr, which stands for
CloudWatch Logs. A handler that exits ends the process, after a last {"exiting": true, "observed"}
line: the parent reports Runtime.ExitError.

The `extensions` are Python files loaded into the sandbox after the handler, like Lambda
extensions: local instrumentation (localcloud/observe.py counts model calls). An extension's
optional `observe()` returns counts ({kind: {key: n}}) since its last call; they travel back with
each response. Only the standard library is imported here.
"""

from __future__ import annotations

import decimal
import importlib
import importlib.util
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

Handler = Callable[[Any, Any], Any]


class LambdaContext:
    """The context object the Lambda Python runtime passes to a handler."""

    def __init__(self, request_id: str, function_arn: str, deadline_ms: int) -> None:
        self.aws_request_id = request_id
        self.invoked_function_arn = function_arn
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def error_document(error_type: str, message: str, stack: list[str] | None = None) -> dict[str, Any]:
    return {"errorMessage": message, "errorType": error_type, "requestId": "", "stackTrace": stack or []}


def load_handler(name: str) -> tuple[Handler | None, dict[str, Any] | None]:
    """The handler `module.attribute`, or the error document Lambda reports for each invocation of a
    function whose handler cannot be loaded."""
    module_name, _, attribute = name.rpartition(".")
    if not module_name:
        return None, error_document(
            "Runtime.MalformedHandlerName", f"Bad handler '{name}': not enough values to unpack (expected 2, got 1)"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        return None, error_document("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}")
    except SyntaxError as exc:
        return None, error_document("Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {exc}")
    except Exception as exc:  # an init error of the user's code, reported like Lambda does
        return None, error_document(type(exc).__name__, str(exc), traceback.format_exception(exc))
    handler = getattr(module, attribute, None)
    if not callable(handler):
        return None, error_document(
            "Runtime.HandlerNotFound", f"Handler '{attribute}' missing on module '{module_name}'"
        )
    return handler, None


def load_extension(path: str) -> Callable[[], dict[str, dict[str, int]]] | None:
    spec = importlib.util.spec_from_file_location(f"_local_extension_{abs(hash(path))}", path)
    assert spec is not None and spec.loader is not None, path
    module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, "observe", None)


def _json_default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):  # as the Lambda runtime's encoder does
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def invoke(handler: Handler, request: dict[str, Any]) -> tuple[Any, str | None]:
    context = LambdaContext(request["request_id"], request["function_arn"], request["deadline_ms"])
    try:
        result = handler(request["event"], context)
    except Exception as exc:  # every handler error is the invocation's result
        document = error_document(
            type(exc).__name__, str(exc), traceback.format_list(traceback.extract_tb(exc.__traceback__))
        )
        document["requestId"] = context.aws_request_id
        return document, "Unhandled"
    try:
        return json.loads(json.dumps(result, default=_json_default)), None
    except (TypeError, ValueError) as exc:
        return error_document("Runtime.MarshalError", f"Unable to marshal response: {exc}"), "Unhandled"


def main() -> None:
    layout = json.loads(sys.argv[1])
    sys.path[:0] = layout["code"]
    sys.path.extend(layout["runtime"])
    results = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # the handler's stdout joins its logs on stderr; the copy of fd 1 carries results
    handler, init_error = load_handler(os.environ["_HANDLER"])
    observers = [observe for path in layout["extensions"] if (observe := load_extension(path))]

    def send(document: dict[str, Any]) -> None:
        results.write(json.dumps(document) + "\n")
        results.flush()

    def observed() -> dict[str, dict[str, int]]:
        merged: dict[str, dict[str, int]] = {}
        for observe in observers:
            for kind, counts in observe().items():
                totals = merged.setdefault(kind, {})
                for key, count in counts.items():
                    totals[key] = totals.get(key, 0) + count
        return merged

    send({"ready": True})
    for line in sys.stdin:
        request = json.loads(line)
        error: str | None
        if handler is None:
            payload, error = {**(init_error or {}), "requestId": request["request_id"]}, "Unhandled"
        else:
            try:
                payload, error = invoke(handler, request)
            except BaseException:  # SystemExit: the runtime exits, as Lambda's does; what was counted is kept
                send({"exiting": True, "observed": observed()})
                raise
        send({"payload": payload, "error": error, "observed": observed()})


if __name__ == "__main__":
    main()
