"""The built-in `http_fetch` tool: GET one URL from a host the deployment allows.

Workflows are written by users and their inputs come from anywhere, so the tool only reaches
hosts listed in SUTRAM_HTTP_ALLOWLIST, follows redirects only to such hosts, and refuses names
that resolve to internal addresses (see `_open_checked_socket`).
"""

from __future__ import annotations

import codecs
import http.client
import ipaddress
import socket
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from sutram.errors import InvalidStepInput, StepFailed, TransientStepError
from sutram.settings import get_settings
from sutram.tools import ToolContext, tool

MAX_BYTES_LIMIT = 5_000_000  # bytes of body a single fetch may return
TIMEOUT_LIMIT = 30  # seconds, per connect and per read
_PLAIN_HTTP_HOSTS = frozenset({"127.0.0.1", "localhost"})  # local test servers only
_ALLOWLIST_HINT = "SUTRAM_HTTP_ALLOWLIST (comma-separated host names, matched exactly)"


class HttpFetchArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str
    method: Literal["GET"] = "GET"
    max_bytes: int = Field(1_000_000, ge=1, le=MAX_BYTES_LIMIT)
    timeout_seconds: float = Field(10, gt=0, le=TIMEOUT_LIMIT)


@tool("http_fetch", delivery="at_least_once")
def http_fetch(args: HttpFetchArgs, context: ToolContext) -> dict[str, Any]:
    """GET `url` and return its status, content type and text (at most `max_bytes` bytes of it).

    The host must be in SUTRAM_HTTP_ALLOWLIST; https is required except for 127.0.0.1 and
    localhost. A GET changes nothing, so a retried fetch needs no idempotency key.
    """
    allowed_hosts = get_settings().http_allowed_hosts
    if problem := _url_problem(args.url, allowed_hosts):
        raise InvalidStepInput(f"tool 'http_fetch': url: {problem}")
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}),  # connect directly: the address check must see the real peer
        _CheckedHTTPHandler(),
        _CheckedHTTPSHandler(),
        _AllowlistedRedirects(allowed_hosts),
    )
    request = urllib.request.Request(args.url, headers={"User-Agent": "sutram-http-fetch"}, method=args.method)
    try:
        with opener.open(request, timeout=args.timeout_seconds) as response:
            body = response.read(args.max_bytes + 1)
            truncated = len(body) > args.max_bytes
            return {
                "url": response.geturl(),
                "status": response.status,
                "content_type": response.headers.get("Content-Type"),
                "text": _decode(body[: args.max_bytes], response.headers.get_content_charset(), truncated),
                "truncated": truncated,
            }
    except urllib.error.HTTPError as exc:
        exc.close()
        message = f"http_fetch: GET {args.url}: HTTP {exc.code} {exc.reason}"
        if exc.code == 429 or exc.code >= 500:
            raise TransientStepError(message) from None
        raise StepFailed(message) from None
    except (OSError, http.client.HTTPException) as exc:  # URLError, DNS, refused, reset, timeout
        raise TransientStepError(f"http_fetch: GET {args.url}: {getattr(exc, 'reason', exc)}") from None


def _url_problem(url: str, allowed_hosts: frozenset[str]) -> str | None:
    """Why the tool may not fetch `url` (the step's own or a redirect's target), or None."""
    parts = urllib.parse.urlsplit(url)
    try:
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError:
        return f"{url!r} has an invalid port"
    host = parts.hostname
    if parts.scheme not in ("http", "https") or not host:
        return f"{url!r} is not an http(s) URL"
    if host not in allowed_hosts:
        return f"host {host!r} is not in {_ALLOWLIST_HINT}"
    if parts.scheme == "http" and host not in _PLAIN_HTTP_HOSTS:
        return f"{url!r} must use https (plain http is only for 127.0.0.1 and localhost)"
    return None


def _decode(body: bytes, charset: str | None, truncated: bool) -> str:
    try:
        decoder = codecs.getincrementaldecoder(charset or "utf-8")(errors="replace")
    except LookupError:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    # When the body was cut, a character split by the cut is left out rather than garbled.
    return decoder.decode(body, final=not truncated)


def _is_named_literally(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host == "localhost"
    return True


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    return ip.is_global and not ip.is_multicast


def _open_checked_socket(
    address: tuple[str, int], timeout: float | None = None, source_address: Any = None
) -> socket.socket:
    """The SSRF guard: connect only to public addresses, unless the allowlist names the address.

    An allowlisted *name* is trusted to be a public service, but DNS is not: a name can be made
    to resolve (or re-resolve, "DNS rebinding") to 169.254.169.254, the instance metadata service
    that hands out the Lambda role's credentials, or to another internal address. So every
    address the name resolves to must be public, and the socket connects to one of exactly those
    addresses, leaving no second lookup to tamper with. An operator who does want an internal
    service lists its address itself (or localhost), and that literal host skips the check.
    """
    host, port = address
    if _is_named_literally(host):
        return socket.create_connection(address, timeout, source_address)
    resolved = [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]
    internal = [ip for ip in resolved if not _is_public(ip)]
    if internal:
        raise StepFailed(
            f"http_fetch: host {host!r} resolves to the non-public address {internal[0]}; "
            f"to allow an internal service, list its address in {_ALLOWLIST_HINT}"
        )
    last_error: OSError = OSError(f"no address for {host}")
    for ip in resolved:
        try:
            return socket.create_connection((ip, port), timeout, source_address)
        except OSError as exc:
            last_error = exc
    raise last_error


class _CheckedConnection:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # http.client opens every socket through this attribute (HTTPS wraps it in TLS afterwards,
        # with the host name, so certificates are still checked against the name).
        self._create_connection = _open_checked_socket


class _CheckedHTTPConnection(_CheckedConnection, http.client.HTTPConnection):
    pass


class _CheckedHTTPSConnection(_CheckedConnection, http.client.HTTPSConnection):
    pass


class _CheckedHTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_CheckedHTTPConnection, req)


class _CheckedHTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_CheckedHTTPSConnection, req)


class _AllowlistedRedirects(urllib.request.HTTPRedirectHandler):
    def __init__(self, allowed_hosts: frozenset[str]) -> None:
        self._allowed_hosts = allowed_hosts

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        if problem := _url_problem(newurl, self._allowed_hosts):
            fp.close()
            raise StepFailed(f"http_fetch: refused the redirect from {req.full_url} to {newurl}: {problem}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)
