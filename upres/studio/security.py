"""Requests the studio answers: from its own page only.

A page on any other site can make the browser send requests to 127.0.0.1, so the studio checks
every request: the Host header must name this server (a DNS-rebinding attack sends the attacker's
name), an Origin header, when there is one, must be this server's, a browser's Sec-Fetch-Site
must not say cross-site, and a request that changes anything must carry JSON (an HTML form can
only post form encodings, and a cross-origin fetch with JSON needs a preflight that gets no CORS
answer here).
"""

from __future__ import annotations

import ipaddress
import json

from starlette.types import ASGIApp, Receive, Scope, Send

_SAFE_METHODS = {"GET", "HEAD"}


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts(host: str, port: int) -> frozenset[str]:
    """The Host header values that name this server: the bound address, and the loopback names
    when it is a loopback (or any) address."""
    names = {host}
    if is_loopback(host) or host in ("0.0.0.0", "::"):
        names |= {"127.0.0.1", "localhost", "[::1]"}
    if ":" in host and not host.startswith("["):
        names.add(f"[{host}]")
    return frozenset(f"{name}:{port}" for name in names if name not in ("0.0.0.0", "::"))


class SameOriginOnly:
    def __init__(self, app: ASGIApp, hosts: frozenset[str]) -> None:
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        reason = self.refusal(scope["method"], headers)
        if reason:
            body = json.dumps({"error": reason}).encode()
            await send({"type": "http.response.start", "status": 403,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)

    def refusal(self, method: str, headers: dict[str, str]) -> str:
        host = headers.get("host", "")
        if host not in self.hosts:
            return f"Host {host!r} is not this studio"
        origin = headers.get("origin")
        if origin is not None and origin != f"http://{host}":
            return f"cross-origin request from {origin!r} refused"
        if headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            return "cross-site request refused"
        kind = headers.get("content-type", "").split(";")[0].strip()
        if method not in _SAFE_METHODS and kind != "application/json":
            return "a request that changes something must send JSON"
        return ""
