"""http_fetch against a real HTTP server on 127.0.0.1; nothing here leaves the machine."""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from sutram.errors import InvalidStepInput, StepFailed, TransientStepError
from sutram.settings import get_settings
from sutram.tools import ToolContext, get_tool
from tests.unit.support.http import LocalServer, quiet, reply, running

CONTEXT = ToolContext(tenant="acme", run_id="run-1", step_path="fetch", attempt=1)
Reply = tuple[int, dict[str, str], bytes]


class Site(LocalServer):
    """Serves `routes` (path -> reply, or a function returning one) and records requested paths."""

    def __init__(self) -> None:
        super().__init__(_Handler)
        self.routes: dict[str, Reply | Callable[[], Reply]] = {}
        self.paths: list[str] = []

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.server_port}{path}"


class _Handler(BaseHTTPRequestHandler):
    server: Site

    def do_GET(self) -> None:
        self.server.paths.append(self.path)
        route = self.server.routes.get(self.path, (404, {}, b"not found"))
        status, headers, body = route() if callable(route) else route
        reply(self, status, headers, body)

    log_message = quiet


@pytest.fixture
def site() -> Iterator[Site]:
    with running(Site()) as server:
        yield server


@pytest.fixture
def allow(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    monkeypatch.setenv("SUTRAM_TABLE", "t")
    monkeypatch.setenv("SUTRAM_BUCKET", "b")

    def set_allowlist(hosts: str) -> None:
        monkeypatch.setenv("SUTRAM_HTTP_ALLOWLIST", hosts)
        get_settings.cache_clear()

    yield set_allowlist
    get_settings.cache_clear()


def fetch(url: str, **args: Any) -> dict[str, Any]:
    return get_tool("http_fetch").run({"url": url, **args}, CONTEXT)


def test_fetches_a_page_from_an_allowlisted_host(site: Site, allow: Callable[[str], None]) -> None:
    allow("example.org, 127.0.0.1")
    site.routes["/page"] = (200, {"Content-Type": "text/plain; charset=utf-8"}, "Grüße, Ada".encode())

    result = fetch(site.url("/page"))

    assert result == {
        "url": site.url("/page"),
        "status": 200,
        "content_type": "text/plain; charset=utf-8",
        "text": "Grüße, Ada",
        "truncated": False,
    }


def test_decodes_with_the_declared_charset(site: Site, allow: Callable[[str], None]) -> None:
    allow("127.0.0.1")
    site.routes["/latin"] = (200, {"Content-Type": "text/html; charset=iso-8859-1"}, "café".encode("latin-1"))

    assert fetch(site.url("/latin"))["text"] == "café"


def test_refuses_a_host_missing_from_the_allowlist_without_connecting(site: Site, allow: Callable[[str], None]) -> None:
    allow("127.0.0.1")

    with pytest.raises(InvalidStepInput) as refusal:
        fetch(site.url("/page", host="localhost"))

    assert "url: host 'localhost' is not in SUTRAM_HTTP_ALLOWLIST" in str(refusal.value)
    assert site.paths == []


def test_refuses_everything_when_the_allowlist_is_empty(allow: Callable[[str], None]) -> None:
    allow("")

    with pytest.raises(InvalidStepInput, match=r"host 'example\.org' is not in SUTRAM_HTTP_ALLOWLIST"):
        fetch("https://example.org/")


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://example.org/", "must use https"),
        ("ftp://example.org/file", "is not an http(s) URL"),
        ("https://example.org:port/", "has an invalid port"),
        ("/relative/path", "is not an http(s) URL"),
    ],
)
def test_refuses_urls_that_are_not_https(allow: Callable[[str], None], url: str, problem: str) -> None:
    allow("example.org")

    with pytest.raises(InvalidStepInput, match=rf"tool 'http_fetch': url: .*{re.escape(problem)}"):
        fetch(url)


def test_follows_a_redirect_within_the_allowlist(site: Site, allow: Callable[[str], None]) -> None:
    allow("127.0.0.1")
    site.routes["/old"] = (301, {"Location": "/new"}, b"")
    site.routes["/new"] = (200, {"Content-Type": "text/plain"}, b"moved here")

    result = fetch(site.url("/old"))

    assert (result["url"], result["text"]) == (site.url("/new"), "moved here")


def test_refuses_a_redirect_to_a_host_missing_from_the_allowlist(site: Site, allow: Callable[[str], None]) -> None:
    allow("127.0.0.1")
    site.routes["/out"] = (302, {"Location": site.url("/secret", host="localhost")}, b"")

    with pytest.raises(StepFailed, match=r"refused the redirect .* host 'localhost' is not in SUTRAM_HTTP_ALLOWLIST"):
        fetch(site.url("/out"))

    assert site.paths == ["/out"]


def test_truncates_the_body_to_max_bytes(site: Site, allow: Callable[[str], None]) -> None:
    allow("127.0.0.1")
    site.routes["/long"] = (200, {"Content-Type": "text/plain"}, b"0123456789" * 10)

    result = fetch(site.url("/long"), max_bytes=15)

    assert (result["text"], result["truncated"]) == ("012345678901234", True)


def test_a_cut_through_a_multibyte_character_drops_that_character(site: Site, allow: Callable[[str], None]) -> None:
    allow("127.0.0.1")
    site.routes["/accents"] = (200, {"Content-Type": "text/plain; charset=utf-8"}, "ééé".encode())

    result = fetch(site.url("/accents"), max_bytes=3)  # "é" is 2 bytes: the cut splits the second

    assert (result["text"], result["truncated"]) == ("é", True)


@pytest.mark.parametrize("status", [429, 500, 503])
def test_server_errors_are_transient(site: Site, allow: Callable[[str], None], status: int) -> None:
    allow("127.0.0.1")
    site.routes["/busy"] = (status, {}, b"try later")

    with pytest.raises(TransientStepError, match=f"HTTP {status}"):
        fetch(site.url("/busy"))


@pytest.mark.parametrize("status", [403, 404])
def test_client_errors_fail_the_step(site: Site, allow: Callable[[str], None], status: int) -> None:
    allow("127.0.0.1")
    site.routes["/gone"] = (status, {}, b"no")

    with pytest.raises(StepFailed, match=f"GET {site.url('/gone')}: HTTP {status}"):
        fetch(site.url("/gone"))


def test_a_timeout_is_transient(site: Site, allow: Callable[[str], None]) -> None:
    allow("127.0.0.1")

    def slow() -> Reply:
        site.release.wait(5)
        return (200, {}, b"late")

    site.routes["/slow"] = slow

    with pytest.raises(TransientStepError, match="timed out"):
        fetch(site.url("/slow"), timeout_seconds=0.2)


def test_refuses_a_name_that_resolves_to_an_internal_address(
    allow: Callable[[str], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an allowlisted name whose DNS answer points at the instance metadata service
    allow("assets.example.org")
    answer = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", 443))]
    monkeypatch.setattr(socket, "getaddrinfo", lambda *args, **kwargs: answer)

    # When it is fetched, Then no connection is made to that address
    monkeypatch.setattr(socket, "create_connection", lambda *args, **kwargs: pytest.fail("connected"))
    with pytest.raises(StepFailed) as refusal:
        fetch("https://assets.example.org/logo.txt")

    assert "'assets.example.org' resolves to the non-public address 169.254.169.254" in str(refusal.value)


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"max_bytes": 5_000_001}, "max_bytes"),
        ({"max_bytes": 0}, "max_bytes"),
        ({"timeout_seconds": 31}, "timeout_seconds"),
        ({"method": "POST"}, "method"),
        ({"headers": {}}, "headers"),
        ({"url": None}, "url"),
    ],
)
def test_rejects_bad_arguments_naming_the_field(args: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidStepInput, match=rf"tool 'http_fetch': {field}: "):
        get_tool("http_fetch").run({"url": "https://example.org/"} | args, CONTEXT)
