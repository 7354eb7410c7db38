"""Local HTTP servers, 127.0.0.1 only: a fake upstream for provider and tool tests, in a daemon
thread, and a Lambda handler in this process served by the local HTTP adapter behind an authorizer."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

from localcloud.http_api import serve
from localcloud.lambda_context import LocalLambdaContext


class LocalServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.release = threading.Event()  # set to let a slow reply finish


Server = TypeVar("Server", bound=LocalServer)


@contextmanager
def running(server: Server) -> Iterator[Server]:
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
    try:
        yield server
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()


def reply(handler: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes) -> None:
    try:
        handler.send_response(status)
        for name, value in (headers | {"Content-Length": str(len(body))}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)
    except OSError:
        pass  # the client gave up (timeout tests)


def quiet(handler: BaseHTTPRequestHandler, format: str, *args: Any) -> None:
    """For `log_message`: requests are asserted on, not printed."""


@contextmanager
def serving(handler: Callable[..., Any], authenticator: Any) -> Iterator[str]:
    """`handler`, called in this process one request at a time (its moto mock and Powertools
    resolver are this process's), served over HTTP by the local HTTP adapter behind
    `authenticator`; its base URL."""
    lock = threading.Lock()

    def invoke(event: dict[str, Any]) -> tuple[Any, str | None]:
        with lock:
            try:
                return handler(event, LocalLambdaContext(function_name="sutram-api")), None
            except Exception as exc:  # a function error, as Lambda reports it
                return {"errorType": type(exc).__name__, "errorMessage": str(exc)}, "Unhandled"

    server, base_url = serve(invoke, authenticator=authenticator)
    try:
        yield base_url
    finally:
        server.shutdown()
        server.server_close()
