"""Safety of the web app: which requests it answers, the headers it sends, one server per data dir.

The app runs on an analyst's workstation next to their browser, so the threats are other web pages
in that browser (cross-site request forgery, DNS rebinding, framing) and, when bound beyond
loopback, other machines on the network. The layers, outermost first (see ``install``):

1. ``SecurityHeadersMiddleware``: ``X-Content-Type-Options: nosniff``, a Content-Security-Policy with
   ``frame-ancestors 'none'``, ``X-Frame-Options: DENY`` and ``Referrer-Policy: same-origin`` on every
   response, errors included.
2. Starlette's ``TrustedHostMiddleware``: the ``Host`` header must name this server (``allowed_hosts_for``
   derives the list from the bind address); anything else is 400 (defeats DNS rebinding).
3. ``RequestGuardMiddleware``: a NUL or control character in the decoded path or query is 400; with an
   access token configured (non-loopback binds), every route needs it (``?token=`` once, which sets an
   HttpOnly SameSite=Strict cookie and redirects to the clean URL; or ``Authorization: Bearer``), else 401;
   state-changing methods (POST, PUT, PATCH, DELETE) must come from this origin (``Origin``, else
   ``Referer``; ``Origin: null`` is refused) and carry the per-server CSRF token in ``X-CSRF-Token``
   (the pages send it; scripts read it from ``GET /api/session``), else 403.

``DataDirLock`` is an OS file lock (``filelock``: ``flock`` on POSIX, released by the kernel when the
holder dies, so a server killed with ``kill -9`` leaves no stale lock) on ``DATA_DIR/serve.lock``.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import os
import re
import socket
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import parse_qsl, unquote_to_bytes, urlencode, urlsplit

from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from e2espot.errors import ConfigError

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
TOKEN_COOKIE = "e2espot_token"
CSRF_HEADER = "x-csrf-token"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")
# Swagger UI sets inline style attributes and shows data: images; still no inline or foreign script
DOCS_CSP = CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
_CONTROL = re.compile(rb"[\x00-\x1f\x7f]")


_ESCAPED_CONTROL = re.compile(r"%(?:[01][0-9a-f]|7f)", re.IGNORECASE)


def has_control_chars(text: str, *, escaped: bool = False) -> bool:
    """True when ``text`` holds a NUL, another C0 control character or DEL; with ``escaped``, also their
    percent escapes (``%00``; browsers send a newline in an upload's file name as ``%0A``)."""
    return any(ord(c) < 32 or ord(c) == 127 for c in text) or bool(escaped and _ESCAPED_CONTROL.search(text))


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP addresses (``127.0.0.0/8``, ``::1``)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts_for(bind_host: str, extra: Iterable[str] = ()) -> list[str]:
    """Host-header names a server bound to ``bind_host`` answers to (ports are not compared).

    Loopback bind: ``127.0.0.1``, ``localhost``, ``::1``. A specific address: that address, plus the
    machine's host name and FQDN. ``0.0.0.0`` / ``::`` (every interface): loopback names, the host name,
    the FQDN and the addresses they resolve to. ``extra`` (``serve --allow-host``) is always added.
    """
    hosts: list[str] = []
    bind = bind_host.strip("[]")
    if is_loopback(bind):
        hosts += [*LOOPBACK_HOSTS, bind]
    else:
        names = {socket.gethostname(), socket.getfqdn()} - {""}
        if bind in ("0.0.0.0", "::", ""):
            hosts += LOOPBACK_HOSTS
            for name in sorted(names):
                try:
                    hosts += sorted({info[4][0] for info in socket.getaddrinfo(name, None)})
                except OSError:  # a host name that does not resolve: its name is still allowed
                    pass
        else:
            hosts.append(bind)
        hosts += sorted(names)
    hosts += list(extra)
    return _host_names(hosts)


def _host_names(hosts: Iterable[str]) -> list[str]:
    """Lower-cased, IPv6 literals bracketed as Host headers carry them, duplicates dropped."""
    out: list[str] = []
    for h in hosts:
        h = h.lower()
        if ":" in h and not h.startswith("["):
            h = f"[{h}]"
        if h not in out:
            out.append(h)
    return out


class _HostList(TrustedHostMiddleware):
    """Starlette's TrustedHostMiddleware, also matching bracketed IPv6 literals (``[::1]:8000``)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            host = _header(scope, b"host")
            if host.startswith("["):
                name = host.split("]")[0] + "]"
                if name.lower() in self.allowed_hosts:
                    await self.app(scope, receive, send)
                    return
        await super().__call__(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str:
    for k, v in scope.get("headers", ()):
        if k == name:
            return v.decode("latin-1")
    return ""


def _cookie(scope: Scope, name: str) -> str:
    from http.cookies import CookieError, SimpleCookie

    raw = _header(scope, b"cookie")
    if not raw:
        return ""
    try:
        jar = SimpleCookie(raw)
    except CookieError:  # a malformed Cookie header is as good as none
        return ""
    return jar[name].value if name in jar else ""


def _same(a: str, b: str) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(a.encode(), b.encode())


def _netloc(url_or_host: str, scheme: str) -> str:
    """``host[:port]`` lower-cased, with the scheme's default port dropped."""
    return url_or_host.lower().removesuffix(":443" if scheme == "https" else ":80")


async def _respond(send: Send, status: int, detail: str, headers: Mapping[str, str] | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    hdrs = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    hdrs += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": body})


class SecurityHeadersMiddleware:
    """Adds nosniff, CSP (with ``frame-ancestors 'none'``), X-Frame-Options and Referrer-Policy to every
    HTTP response; ``csp_overrides`` maps a path prefix to another policy (the API docs page)."""

    def __init__(self, app: ASGIApp, csp_overrides: Mapping[str, str] | None = None) -> None:
        self.app, self.csp_overrides = app, dict(csp_overrides or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = next((v for k, v in self.csp_overrides.items() if scope["path"].startswith(k)), CSP)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", ())
                           if k.lower() not in (b"x-content-type-options", b"content-security-policy",
                                                b"x-frame-options", b"referrer-policy")]
                headers += [(b"x-content-type-options", b"nosniff"),
                            (b"content-security-policy", csp.encode()),
                            (b"x-frame-options", b"DENY"),
                            (b"referrer-policy", b"same-origin")]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class RequestGuardMiddleware:
    """Control characters -> 400; access token (when set) -> 401; cross-origin or token-less writes -> 403."""

    def __init__(self, app: ASGIApp, *, csrf_token: str, access_token: str | None = None) -> None:
        self.app, self.csrf_token, self.access_token = app, csrf_token, access_token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw_query = scope.get("query_string", b"")
        if has_control_chars(scope["path"]) or _CONTROL.search(unquote_to_bytes(raw_query.decode("latin-1"))):
            await _respond(send, 400, "the URL holds a NUL or control character; remove it")
            return
        method = scope["method"].upper()

        if self.access_token:
            query = parse_qsl(raw_query.decode("latin-1"), keep_blank_values=True)
            given = next((v for k, v in query if k == "token"), "")
            bearer = _header(scope, b"authorization")
            bearer = bearer[7:].strip() if bearer.lower().startswith("bearer ") else ""
            if _same(given, self.access_token):
                if method in ("GET", "HEAD"):  # set the cookie, then drop the token from the address bar
                    rest = urlencode([(k, v) for k, v in query if k != "token"])
                    await _respond(send, 303, "see the location", {
                        "location": scope["path"] + (f"?{rest}" if rest else ""),
                        "set-cookie": f"{TOKEN_COOKIE}={self.access_token}; HttpOnly; SameSite=Strict; Path=/"})
                    return
            elif not (_same(_cookie(scope, TOKEN_COOKIE), self.access_token) or _same(bearer, self.access_token)):
                await _respond(send, 401, "this server needs its access token: open the address that "
                                          "'e2espot serve' printed (it ends in ?token=...), or send "
                                          "'Authorization: Bearer TOKEN'")
                return

        if method in UNSAFE_METHODS:
            scheme = scope.get("scheme", "http")
            host = _netloc(_header(scope, b"host"), scheme)
            origin = _header(scope, b"origin")
            referer = _header(scope, b"referer")
            if origin:
                parts = urlsplit(origin)
                if origin == "null" or _netloc(parts.netloc, parts.scheme) != host:
                    await _respond(send, 403, f"cross-origin request refused (Origin: {origin[:100]}); "
                                              "use the e2espot page of this server")
                    return
            elif referer:
                parts = urlsplit(referer)
                if _netloc(parts.netloc, parts.scheme) != host:
                    await _respond(send, 403, "cross-origin request refused (Referer of another site); "
                                              "use the e2espot page of this server")
                    return
            if not _same(_header(scope, CSRF_HEADER.encode()), self.csrf_token):
                await _respond(send, 403, "missing or wrong CSRF token: send the X-CSRF-Token header "
                                          "(the page does; scripts read it from GET /api/session)")
                return
        await self.app(scope, receive, send)


def install(app, *, allowed_hosts: Iterable[str], csrf_token: str, access_token: str | None,
            csp_overrides: Mapping[str, str] | None = None) -> None:
    """Add the three layers to a FastAPI/Starlette ``app`` (the last added runs first)."""
    app.add_middleware(RequestGuardMiddleware, csrf_token=csrf_token, access_token=access_token)
    app.add_middleware(_HostList, allowed_hosts=_host_names(allowed_hosts))
    app.add_middleware(SecurityHeadersMiddleware, csp_overrides=csp_overrides)


# --------------------------------------------------------------------------- errors shown to people

_ERRNO = re.compile(r"\[(?:Errno|WinError) -?\d+\]\s*|\b(?:errno|error code) -?\d+:?\s*", re.IGNORECASE)
_ABS_PATH = re.compile(r"(?<![\w.:/>])(?:/|[A-Za-z]:\\)(?:[^\s'\"`<>|/\\]+[/\\])+([^\s'\"`<>|/\\]*)")


def public_error(message: str, replacements: Mapping[str | Path, str] = ()) -> str:
    """``message`` with no server internals: each key of ``replacements`` (a path) becomes its value
    (longest first), the temp dir becomes ``<tmp>``, any other absolute path its last component, and
    errno markers (``[Errno 2]``) go."""
    out = message
    pairs = {str(k): v for k, v in dict(replacements).items() if str(k)}
    pairs.setdefault(tempfile.gettempdir(), "<tmp>")
    for key in sorted(pairs, key=len, reverse=True):  # whole path components only: /tmp, not /tmpab12
        out = re.sub(re.escape(key) + r"(?![^/\\\s'\"`<>|:;,)])", lambda m, v=pairs[key]: v, out)
    out = _ABS_PATH.sub(lambda m: m.group(1) or "<dir>", out)
    return _ERRNO.sub("", out)


# --------------------------------------------------------------------------- one server per data dir


class DataDirLock:
    """Exclusive lock of ``data_dir`` for one server process (``DATA_DIR/serve.lock``; the holder's pid
    and address go to ``DATA_DIR/serve.pid`` for the message the second server prints).

    ``acquire`` raises ``ConfigError`` at once when another live process holds it. The OS releases the
    lock when its holder exits, however it exits, so a killed server never blocks the next one.
    """

    def __init__(self, data_dir: Path) -> None:
        from filelock import FileLock

        self.data_dir = Path(data_dir)
        self._lock = FileLock(self.data_dir / "serve.lock", timeout=0, thread_local=False)

    @property
    def held(self) -> bool:
        return self._lock.is_locked

    def acquire(self, address: str = "") -> None:
        from filelock import Timeout

        try:
            self._lock.acquire()
        except Timeout:
            holder = ""
            try:
                holder = (self.data_dir / "serve.pid").read_text().strip()
            except OSError:
                pass
            raise ConfigError(
                f"data dir '{self.data_dir}' is in use by another e2espot server"
                f"{f' ({holder})' if holder else ''}; stop that server or pass another --data-dir"
            ) from None
        (self.data_dir / "serve.pid").write_text(f"pid {os.getpid()}{f', {address}' if address else ''}\n")

    def release(self) -> None:
        if self._lock.is_locked:
            (self.data_dir / "serve.pid").unlink(missing_ok=True)
            self._lock.release(force=True)
