"""The live preview: ``python site.py preview``.

livereload (on tornado) is kept for its server skeleton and its websocket
reload channel; the parts of livereload 2.7.1 that fall short are replaced
through its extension points (see docs/preview.md, "What preview fixes in livereload"):

- the WSGI app runs in tornado's WSGIContainer on a thread pool, so a slow
  request never stalls other requests or the reload channel;
- the reload client is injected by a WSGI middleware into text/html only,
  inside ``<!--preview-->…<!--/preview-->``, with a correct Content-Length;
- the websocket accepts pages of this server only and sends URL paths only;
- only the host names the preview was started for are answered (no DNS
  rebinding);
- tornado's body handling is replaced for the app: a streaming handler
  refuses an oversized body with 413 and a reason, passes chunked bodies on,
  and leaves multipart parsing to Werkzeug; headers over 64 KiB get 431;
- files are watched by sitegen.preview.watch (native events, a quiet window, no
  dropped edits) and a change re-reads only the files that changed;
- a broken file shows an error page that heals itself, never a traceback;
- a Python edit restarts the app in a fresh child process while the parent
  keeps the listening socket: the old child stops accepting and finishes the
  requests it has while the new one starts, so no request in flight fails.

Only this module imports livereload.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import webbrowser
from http import HTTPStatus
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePath

import click
from flask import Flask
from jinja2 import TemplateSyntaxError
from livereload import Server
from livereload.handlers import LiveReloadHandler
from markupsafe import escape
from tornado import web
from tornado.httpserver import HTTPServer
from tornado.httputil import HTTPServerRequest
from tornado.ioloop import IOLoop, PeriodicCallback
from tornado.iostream import IOStream
from tornado.netutil import bind_sockets
from tornado.websocket import WebSocketClosedError, WebSocketHandler
from tornado.wsgi import WSGIContainer

from ..app import create_app
from ..routes import record_routes
from ..content.loader import Content, check_references, load_content, reload_file
from ..site import Site, load_site
from ..errors import ContentError, ContentErrors, SiteError, describe_template_error
from ..live.uploads import describe_size
from ..live.views import API_PREFIX, insert_before_body_end, preview_only
from ..file_events import is_ignored
from .watch import FileWatcher, Fingerprint

ENGINE_DIR = Path(__file__).resolve().parent.parent
SOURCE_FOLDERS = ("content", "templates", "static")
RELOAD_CHANNEL = "/.livereload"
REQUEST_THREADS = 8
# Used when the app sets no MAX_CONTENT_LENGTH.
DEFAULT_BODY_LIMIT = 16 * 1024 * 1024
# A body is kept in memory up to this size, then in a temporary file.
SPOOL_BYTES = 1024 * 1024
# Headers over MAX_HEADER_BYTES are answered 431; tornado reads up to
# HEADER_READ_LIMIT of them before it gives up and closes the connection.
MAX_HEADER_BYTES = 64 * 1024
HEADER_READ_LIMIT = 1024 * 1024
# After refusing a body, the rest of it is read and dropped for this long, so
# the client reads the answer instead of a connection reset.
LINGER_SECONDS = 2.0
# A restarting app process waits this long at most for its requests in flight,
# and this long for a connection it accepted to send its request.
DRAIN_SECONDS = 60.0
FRESH_CONNECTION_GRACE = 2.0
# What a child writes to its parent when it has stopped accepting connections.
HANDED_OVER = b"H"
STARTUP_FAILED = b"F"  # then the one-line reason
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")


def build_preview_app(site: Site, content: Content) -> Flask:
    """The app the preview serves: the site's app, with errors left to the preview."""
    return create_app(site, content, live=True, config={"PROPAGATE_EXCEPTIONS": True})


def site_code(root: Path) -> list[Path]:
    """The site's own Python files (site.py and its neighbours): an edit restarts the preview."""
    return sorted(root.glob("*.py"))


def echo(message: str) -> None:
    click.echo(message, err=True)


# ---------------------------------------------------------------- what is served

class PreviewSite:
    """The app being previewed, its epoch, and the problems that stop it rendering.

    Changes are applied under ``lock``; requests wait for a change in progress
    instead of seeing half of it. Problems are printed to the terminal once,
    when they appear, not on every request.
    """

    def __init__(self, root: Path):
        self.root = Path(root).resolve()
        self.site = load_site(self.root)
        self.lock = threading.RLock()
        self.app: Flask | None = None
        self.content_errors: dict[str, str] = {}
        self.reference_errors: list[str] = []
        self.template_errors: list[str] = []
        self.render_errors: list[str] = []  # template errors met while rendering a page
        self._reported: set[str] = set()
        self._fingerprint = Fingerprint([*self.source_folders, ENGINE_DIR], files=site_code(self.root),
                                        whole=[self.static_folder])
        self._load_everything()
        self.report()

    @property
    def source_folders(self) -> list[Path]:
        return [self.root / name for name in SOURCE_FOLDERS]

    @property
    def static_folder(self) -> Path:
        """Served whole: a static/build/ or static/node_modules/ file is a source too."""
        return self.root / "static"

    @property
    def epoch(self) -> str:
        return str(self._fingerprint)

    @property
    def errors(self) -> list[str]:
        return [*self.content_errors.values(), *self.reference_errors, *self.template_errors, *self.render_errors]

    def apply(self, paths: Iterable[Path]) -> list[str] | None:
        """Take in changed files; return the URL paths of the stylesheets to swap
        when only stylesheets changed, None when pages must reload."""
        paths = sorted(paths)
        with self.lock:
            for path in paths:
                self._fingerprint.update(path)
            content = [p for p in paths if p.is_relative_to(self.root / "content")]
            templates = [p for p in paths if p.is_relative_to(self.root / "templates")]
            if content or templates:
                self.render_errors = []  # the next request tells whether they are fixed
            if self.app is None:
                if content or templates:
                    self._load_everything()
            else:
                for path in content:
                    self._reload_content(path)
                if content:
                    self.reference_errors = [str(error) for error in check_references(
                        self.site, self.root, self.app.extensions["site_content"])]
                if templates:
                    self.app.jinja_env.cache.clear()
                    self.template_errors = self._check_templates()
        self.report()
        static = self.static_folder
        if self.app and paths and all(p.suffix == ".css" and p.is_relative_to(static) for p in paths):
            return [f"{self.app.static_url_path}/{p.relative_to(static).as_posix()}" for p in paths]
        return None

    def page_failed(self, exc: BaseException) -> str:
        """Describe an error raised while rendering; a template's stays until the next change."""
        where = describe_template_error(exc, self.root / "templates")
        if where is None:
            message = f"{type(exc).__name__}: {exc}"
            with self.lock:
                if message not in self._reported:
                    self._reported.add(message)
                    echo("error while rendering a page:\n"
                         + "".join(traceback.format_exception(exc)).rstrip())
            return message
        with self.lock:
            if where not in self.render_errors:
                self.render_errors.append(where)
        self.report()
        return where

    def report(self) -> None:
        with self.lock:
            errors = self.errors
            for error in errors:
                if error not in self._reported:
                    echo(error)
            if self._reported and not errors:
                echo("fixed: every page renders again")
            self._reported = set(errors)

    def _load_everything(self) -> None:
        try:
            content = load_content(self.site, self.root)
        except ContentErrors as exc:
            self.content_errors = {error.path: str(error) for error in exc.errors}
            self.app = None
            return
        self.content_errors, self.reference_errors = {}, []
        self.app = build_preview_app(self.site, content)
        self.template_errors = self._check_templates()
        try:
            record_routes(self.app)  # a route freeze cannot list: the preview says so too
        except SiteError as exc:
            self.template_errors.append(exc.format_message())

    def _reload_content(self, path: Path) -> None:
        shown = path.relative_to(self.root).as_posix()
        try:
            content = reload_file(self.site, self.app.extensions["site_content"], path, self.root)
        except ContentError as exc:
            self.content_errors[shown] = str(exc)
            return
        self.content_errors.pop(shown, None)
        self.app.extensions["site_content"] = content

    def _check_templates(self) -> list[str]:
        """Compile every template, so a syntax error shows on every page at once."""
        env, errors = self.app.jinja_env, []
        for name in env.list_templates(filter_func=lambda name: not is_ignored(PurePath(name))):
            try:
                env.get_template(name)
            except TemplateSyntaxError as exc:
                errors.append(describe_template_error(exc, self.root / "templates"))
        return errors


# ---------------------------------------------------------------- the WSGI side

def _client_script() -> bytes:
    script = Path(__file__).with_name("client.js").read_bytes()
    assert b"</script" not in script and b"<!--" not in script
    return script


def preview_block(script: bytes, epoch: str) -> bytes:
    """The reload client for a page, marked as preview-only."""
    return preview_only(b'<script data-epoch="' + epoch.encode("ascii") + b'">' + script + b"</script>")


def _is_html(headers: list[tuple[str, str]]) -> bool:
    for name, value in headers:
        if name.lower() == "content-type":
            return value.split(";")[0].strip().lower() == "text/html"
    return False


class PreviewMiddleware:
    """Serves the current app with the reload client in its HTML pages, or the error page.

    HEAD is answered from the GET response so its Content-Length counts the
    injected script; OPTIONS and non-HTML responses pass through as they are,
    streamed.
    """

    def __init__(self, site: PreviewSite):
        self.site = site
        self.script = _client_script()

    def __call__(self, environ, start_response):
        with self.site.lock:
            app, errors, epoch = self.site.app, self.site.errors, self.site.epoch
        block = preview_block(self.script, epoch)
        method = environ["REQUEST_METHOD"]
        path = environ.get("PATH_INFO", "")
        if errors:
            return self._error_page(start_response, errors, block, method, path)
        captured = {}

        def capture(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers
            return lambda data: None  # Flask never uses write()

        inner = dict(environ, REQUEST_METHOD="GET") if method == "HEAD" else environ
        try:
            body = app(inner, capture)
        except Exception as exc:
            return self._error_page(start_response, [self.site.page_failed(exc)], block, method, path)
        status, headers = captured["status"], captured["headers"]
        if method == "OPTIONS" or status[:3] in ("204", "304") or not _is_html(headers):
            start_response(status, headers)
            if method == "HEAD":
                _close(body)
                return []
            return body
        try:
            html = b"".join(body)
        finally:
            _close(body)
        html = insert_before_body_end(html, block)
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        start_response(status, [*headers, ("Content-Length", str(len(html)))])
        return [] if method == "HEAD" else [html]

    @staticmethod
    def _error_page(start_response, errors: list[str], block: bytes, method: str, path: str = ""):
        if path.startswith(API_PREFIX):
            body = json.dumps({"message": f"The site cannot be shown: {errors[0]}"}).encode()
            start_response("500 INTERNAL SERVER ERROR", [("Content-Type", "application/json"),
                                                         ("Content-Length", str(len(body)))])
            return [] if method == "HEAD" else [body]
        items = "".join(f"<li><code>{escape(error)}</code></li>" for error in errors)
        html = (
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            "<title>Preview: the site has an error</title>\n"
            "<style>body{font:16px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem}"
            "code{white-space:pre-wrap;color:#a00}li{margin:.5rem 0}</style>\n</head>\n<body>\n"
            "<h1>The site cannot be shown</h1>\n"
            "<p>Fix the file named below and save it; this page reloads by itself.</p>\n"
            f'<ul class="preview-errors">{items}</ul>\n</body>\n</html>\n'
        ).encode()
        html = insert_before_body_end(html, block)
        start_response("500 INTERNAL SERVER ERROR", [("Content-Type", "text/html; charset=utf-8"),
                                                     ("Content-Length", str(len(html))),
                                                     ("Cache-Control", "no-store")])
        return [] if method == "HEAD" else [html]


def _close(body) -> None:
    if hasattr(body, "close"):
        body.close()


# ---------------------------------------------------------------- the tornado side

def host_name(host: str) -> str:
    """The name part of a Host header (``[::1]:5000`` -> ``[::1]``), lower-cased."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1] or host
    return host.split(":", 1)[0]


def unknown_host(host: str, hosts: Iterable[str]) -> str | None:
    """Why a request for ``host`` is refused (DNS rebinding), or None when the preview answers it."""
    if host_name(host) in hosts:
        return None
    return f"Unknown host {host[:100]!r}: this preview answers only {', '.join(hosts)}."


def allowed_hosts(listen_host: str) -> tuple[str, ...]:
    """The Host names the preview answers: loopback names, plus the address it listens on.

    A wildcard address (0.0.0.0, ::) adds this machine's name and addresses.
    Werkzeug's TRUSTED_HOSTS check cannot be used for this: its
    ``host_is_trusted`` (3.1.9) never matches an IPv6 literal such as [::1].
    """
    names = list(LOOPBACK_HOSTS)
    try:
        address = ipaddress.ip_address(listen_host.strip("[]"))
    except ValueError:
        names.append(listen_host)
    else:
        if address.is_unspecified:
            names += [socket.gethostname(), socket.getfqdn()]
            try:
                names += [info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None)]
            except OSError:
                pass
        else:
            names.append(str(address))
    shown = (f"[{name}]" if ":" in name and not name.startswith("[") else name for name in names)
    return tuple(dict.fromkeys(name.lower() for name in shown))


def header_bytes(request: HTTPServerRequest) -> int:
    return len(request.uri or "") + sum(len(k) + len(v) + 4 for k, v in request.headers.get_all())


def refusal(path: str, status: int, message: str) -> tuple[str, bytes]:
    """A refusal made by the server itself: JSON under /api/, else a one-line page."""
    if path.startswith(API_PREFIX):
        return "application/json", json.dumps({"message": message}).encode()
    reason = HTTPStatus(status).phrase
    return "text/html; charset=utf-8", (
        f'<!DOCTYPE html>\n<html lang="en">\n<head><meta charset="utf-8"><title>{status} {reason}</title></head>\n'
        f'<body>\n<h1>{reason}</h1>\n<p role="alert">{escape(message)}</p>\n</body>\n</html>\n').encode()


class _Connection:
    """What a restart needs to know of one connection: is it serving, has it served."""

    __slots__ = ("opened", "busy", "served")

    def __init__(self) -> None:
        self.opened, self.busy, self.served = time.monotonic(), 0, 0


class TrackingHTTPServer(HTTPServer):
    """An HTTPServer that can stop without cutting a request.

    ``drain`` closes a connection only when it is between requests, never
    while a request is being received or answered (tornado's own
    ``close_all_connections`` closes them whatever they are doing).
    """

    def initialize(self, *args, **kwargs) -> None:
        super().initialize(*args, **kwargs)
        self.connections: dict[IOStream, _Connection] = {}

    def handle_stream(self, stream: IOStream, address: tuple) -> None:
        self.connections[stream] = _Connection()
        super().handle_stream(stream, address)

    async def drain(self, limit: float) -> None:
        """Close each connection once it is idle; return when none is left, or after ``limit`` s."""
        deadline = time.monotonic() + limit
        while True:
            now = time.monotonic()
            for stream, connection in list(self.connections.items()):
                if stream.closed():
                    del self.connections[stream]
                elif not connection.busy and not stream.writing() and (
                        connection.served or now - connection.opened > FRESH_CONNECTION_GRACE):
                    stream.close()
                    del self.connections[stream]
            if not self.connections or now > deadline:
                return
            await asyncio.sleep(0.02)


class BodyWSGIContainer(WSGIContainer):
    """tornado's WSGIContainer, reading the body the AppHandler received, whatever its framing."""

    def environ(self, request: HTTPServerRequest) -> dict:
        environ = super().environ(request)
        body, length = request.preview_body
        environ["wsgi.input"], environ["CONTENT_LENGTH"] = body, str(length)
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        return environ


class GuardedHandler(web.RequestHandler):
    """Refuses, before anything else, a Host the preview was not started for and oversized headers."""

    def problem(self) -> tuple[int, str] | None:
        size = header_bytes(self.request)
        if size > MAX_HEADER_BYTES:
            return 431, (f"The request headers are {describe_size(size)}, over the limit of "
                         f"{describe_size(MAX_HEADER_BYTES)}.")
        unknown = unknown_host(self.request.host, self.preview.hosts)
        return (400, unknown) if unknown else None


@web.stream_request_body
class AppHandler(GuardedHandler):
    """Receives a request's body itself, then runs the app on the thread pool.

    Replaces livereload's FallbackHandler + WSGIContainer pair, where tornado
    buffered the body and parsed it before the app saw it: it refused a body
    over its limit with a bare 400, a multipart form it could not parse (100
    parts or more, a file name with a NUL or invalid UTF-8) with its own 400
    page, and a chunked body never reached the app. Here the body is counted
    as it arrives (413 with a reason as soon as it is over the app's limit),
    kept in a spooled temporary file, and handed to the app whole, with its
    length, for Werkzeug to parse.
    """

    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "DELETE", "PATCH", "PUT", "OPTIONS")

    def initialize(self, preview: "PreviewServer") -> None:
        self.preview = preview
        self.body = None
        self.received = 0
        self.refused = False
        self.linger = None
        self.connection = preview.http_server.connections.get(self.request.connection.stream)
        if self.connection is not None:
            self.connection.busy += 1

    def prepare(self) -> None:
        problem = self.problem()
        declared = self.request.headers.get("Content-Length", "")
        if problem is None and declared.isdigit() and int(declared) > self.preview.body_limit():
            problem = 413, self.preview.too_large_message()
        if problem is not None:
            expects_continue = self.request.headers.get("Expect", "").lower() == "100-continue"
            sends_body = "Content-Length" in self.request.headers or "Transfer-Encoding" in self.request.headers
            return self.refuse(*problem, linger=sends_body and not expects_continue)
        self.body = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)

    def data_received(self, chunk: bytes) -> None:
        if self.refused:
            return  # dropped while lingering
        self.received += len(chunk)
        if self.received > self.preview.body_limit():
            self.refuse(413, self.preview.too_large_message(), linger=True)
            return
        self.body.write(chunk)

    async def respond(self) -> None:
        if self.refused:
            self.end_refusal()
            return
        self.body.seek(0)
        self.request.preview_body = (self.body, self.received)
        try:
            await self.preview.container.handle_request(self.request)
        finally:
            self._finished = True  # answered through the connection, as FallbackHandler does
            self.on_finish()

    get = head = post = delete = patch = put = options = respond

    def refuse(self, status: int, message: str, *, linger: bool) -> None:
        """Answer ``status`` with ``message`` now. While the client is still sending,
        its body is read and dropped for LINGER_SECONDS before the connection
        closes, so that it reads the answer rather than a reset."""
        self.refused = True
        content_type, body = refusal(self.request.path, status, message)
        self.clear()
        self.set_status(status)
        self.set_header("Content-Type", content_type)
        self.set_header("Content-Length", str(len(body)))
        self.set_header("Connection", "close")
        self.write(body)
        if linger:
            self.flush()
            self.linger = IOLoop.current().call_later(LINGER_SECONDS, self.end_refusal)
        else:
            self.finish()

    def end_refusal(self) -> None:
        if self.linger is not None:
            IOLoop.current().remove_timeout(self.linger)
            self.linger = None
        if not self._finished:
            self.finish()

    def on_finish(self) -> None:
        self._release()

    def on_connection_close(self) -> None:
        self._release()
        super().on_connection_close()

    def _release(self) -> None:
        if self.body is not None:
            self.body.close()
            self.body = None
        if self.connection is not None:
            self.connection.busy -= 1
            self.connection.served += 1
            self.connection = None


class ReloadChannel(GuardedHandler, LiveReloadHandler):
    """livereload's websocket, for pages of this server only, announcing the site's epoch.

    A client is registered as soon as it connects (livereload waits for an
    ``info`` message, leaving a gap where a reload is missed) and is told the
    current epoch, so a page rendered before a change it missed reloads.
    """

    def initialize(self, site: PreviewSite, preview: "PreviewServer") -> None:
        self.site, self.preview = site, preview

    def prepare(self) -> None:
        problem = self.problem()
        if problem is not None:
            self.set_status(problem[0])
            self.set_header("Content-Type", "text/plain; charset=utf-8")
            self.finish(problem[1] + "\n")

    def check_origin(self, origin: str) -> bool:
        # livereload accepts any origin; tornado's own check is same-origin, and
        # prepare() has made sure the Host is one of the preview's names.
        return WebSocketHandler.check_origin(self, origin)

    def open(self) -> None:
        LiveReloadHandler.waiters.add(self)
        self.send_message({"command": "hello", "epoch": self.site.epoch})

    @classmethod
    def broadcast(cls, message: dict) -> None:
        for waiter in list(LiveReloadHandler.waiters):
            try:
                waiter.write_message(message)
            except WebSocketClosedError:
                LiveReloadHandler.waiters.discard(waiter)

    @classmethod
    def close_all(cls) -> None:
        for waiter in list(LiveReloadHandler.waiters):
            waiter.close()
        LiveReloadHandler.waiters.clear()


class PreviewServer(Server):
    """livereload's Server running the app on a thread pool behind a guarded, draining HTTP server."""

    def __init__(self, site: PreviewSite, hosts: Iterable[str] = LOOPBACK_HOSTS):
        watcher = FileWatcher([*site.source_folders, ENGINE_DIR], self.changed, top_level=[site.root],
                              whole=[site.static_folder])
        super().__init__(PreviewMiddleware(site), watcher=watcher)
        self.site = site
        self.hosts = tuple(hosts)
        self.executor = ThreadPoolExecutor(REQUEST_THREADS, thread_name_prefix="preview-request")
        self.container = BodyWSGIContainer(self.app, executor=self.executor)
        self.http_server: TrackingHTTPServer | None = None
        self.handing_over = False
        # Called once this process has stopped accepting connections for a restart.
        self.on_hand_over = lambda: None

    def get_web_handlers(self, script):
        """The app on a thread pool. ``script`` is livereload's snippet for its own
        injector, unused: PreviewMiddleware injects the client into HTML only."""
        return [(r".*", AppHandler, {"preview": self})]

    def body_limit(self) -> int:
        app = self.site.app
        return (app.config.get("MAX_CONTENT_LENGTH") if app else None) or DEFAULT_BODY_LIMIT

    def too_large_message(self) -> str:
        app = self.site.app
        limit = (app.config.get("SITE_UPLOAD_LIMIT") if app else None) or self.body_limit()
        return f"The upload is larger than the limit of {describe_size(limit)}."

    def listen(self, sockets: list[socket.socket]) -> HTTPServer:
        """Serve on ``sockets``. Not livereload's serve(): it binds by itself (no socket
        kept across restarts), turns on tornado's debug mode and starts its polling.
        tornado's own body and header limits are raised out of the way: AppHandler
        answers them with a status and a reason, where tornado closes or says 400."""
        handlers = [(RELOAD_CHANNEL, ReloadChannel, {"site": self.site, "preview": self}),
                    *self.get_web_handlers(script=None)]
        self.http_server = TrackingHTTPServer(web.Application(handlers, debug=False),
                                              max_body_size=sys.maxsize,
                                              max_header_size=HEADER_READ_LIMIT)
        self.http_server.add_sockets(sockets)
        return self.http_server

    def changed(self, paths: set[Path]) -> None:
        """A batch of saved files: restart for engine or site code, else apply and tell the tabs."""
        if self.handing_over:
            return
        code = sorted(p for p in paths
                      if p.is_relative_to(ENGINE_DIR) or p.suffix == ".py" and p.parent == self.site.root)
        if code:
            echo(f"{code[0].relative_to(code[0].parent.parent).as_posix()} changed: restarting")
            self.handing_over = True
            IOLoop.current().add_callback(self.hand_over)
            return
        stylesheets = self.site.apply(paths)
        message = {"command": "reload", "epoch": self.site.epoch}
        if stylesheets:
            message.update(liveCSS=True, stylesheets=stylesheets)
        ReloadChannel.broadcast(message)

    async def hand_over(self) -> None:
        """Stop accepting, let the next app process start, finish the requests in flight, stop.

        New connections wait in the listening socket's backlog (held by the
        parent) until the next process accepts them; tabs reconnect to it.
        """
        self.http_server.stop()
        self.on_hand_over()
        ReloadChannel.close_all()
        await self.http_server.drain(DRAIN_SECONDS)
        IOLoop.current().stop()


# ---------------------------------------------------------------- processes

def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def run_preview(root: Path, host: str, port: int, *, open_browser: bool = False) -> None:
    """Serve the preview until Ctrl+C.

    This parent process holds the listening socket and runs the app in a
    child. On a Python edit the child stops accepting and says so; the next
    child is started at once while the old one finishes its requests, so
    connections wait in the socket's backlog instead of being refused or cut.
    """
    try:
        sockets = bind_sockets(port, address=host)
    except OSError as exc:
        raise SiteError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    port = sockets[0].getsockname()[1]
    shown_host = f"[{host}]" if ":" in host else host
    url = f"http://{shown_host}:{port}/"
    echo(f"Previewing {root} at {url} (Ctrl+C to stop)")
    if open_browser:
        threading.Timer(0.3, webbrowser.open, [url]).start()
    fds = [sock.fileno() for sock in sockets]
    # -P: the child imports this engine (PYTHONPATH), never a sitegen/ in the current folder.
    command = [sys.executable, "-P", "-c",
               "import sys; from sitegen.preview.server import child_main; sys.exit(child_main(sys.argv[1:]))",
               str(root), ",".join(allowed_hosts(host))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(ENGINE_DIR.parent), os.environ.get("PYTHONPATH")]))}
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    children: list[subprocess.Popen] = []
    try:
        while True:
            children = [child for child in children if child.poll() is None]
            read_end, write_end = os.pipe()
            child = subprocess.Popen([*command, str(write_end), *map(str, fds)],
                                     pass_fds=[*fds, write_end], env=env)
            os.close(write_end)
            children.append(child)
            with os.fdopen(read_end, "rb") as pipe:
                said = pipe.read()  # until the child closes it: b"" when it exits without a word
            if said == HANDED_OVER:
                continue  # the old child finishes its requests and exits by itself
            code = child.wait()
            if code in (0, -signal.SIGINT):
                return
            reason = said[len(STARTUP_FAILED):].decode(errors="replace") if said.startswith(STARTUP_FAILED) \
                else f"the preview stopped (exit status {code}): see the terminal"
            echo(f"waiting: the preview starts again when you save site.py or a file in {ENGINE_DIR.name}/")
            _serve_while_broken(sockets, allowed_hosts(host), reason, Path(root))
    except KeyboardInterrupt:
        pass
    finally:
        for child in children:
            if child.poll() is None:
                child.terminate()
                child.wait()


def _serve_while_broken(sockets: list[socket.socket], hosts: Iterable[str], reason: str, root: Path) -> None:
    """Until site.py or the engine is saved again, answer every request with a page saying why.

    The page refreshes itself every second, so the open tab shows the site as
    soon as the app is back (instead of a connection that hangs in the backlog).
    """
    page = BROKEN_PAGE.format(reason=escape(reason)).encode()
    before = Fingerprint([ENGINE_DIR], files=site_code(root)).value
    while Fingerprint([ENGINE_DIR], files=site_code(root)).value == before:
        ready, _, _ = select.select(sockets, [], [], 0.3)
        for listening in ready:
            try:
                connection, _ = listening.accept()
            except BlockingIOError:
                continue
            with connection:
                _answer_while_broken(connection, hosts, reason, page)


BROKEN_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="1">
<title>Preview: the site does not start</title></head>
<body><h1>The site does not start</h1><p><code>{reason}</code></p>
<p>Fix it and save: this page reloads by itself.</p></body></html>
"""


def _answer_while_broken(connection: socket.socket, hosts: Iterable[str], reason: str, page: bytes) -> None:
    connection.settimeout(2)
    try:
        head = connection.recv(65536).split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        path = head[0].split(" ")[1] if head[0].count(" ") >= 2 else "/"
        host = next((line.split(":", 1)[1].strip() for line in head[1:] if line.lower().startswith("host:")), "")
        unknown = unknown_host(host, hosts)  # the same rule as the running preview
        if unknown:
            status, (kind, body) = "400 Bad Request", refusal(path, 400, unknown)
        elif path.startswith(API_PREFIX):
            status, (kind, body) = "503 Service Unavailable", refusal(path, 503, reason)
        else:
            status, kind, body = "503 Service Unavailable", "text/html; charset=utf-8", page
        connection.sendall(f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\n"
                           f"Content-Length: {len(body)}\r\nRetry-After: 1\r\nX-Frame-Options: DENY\r\n"
                           "Cache-Control: no-store\r\nConnection: close\r\n\r\n".encode() + body)
    except OSError:
        pass


def child_main(argv: list[str]) -> int:
    """The preview app's process: serve on the inherited sockets until a Python edit hands over."""
    root, hosts, hand_over_fd = Path(argv[0]), argv[1].split(","), int(argv[2])
    fds = [int(fd) for fd in argv[3:]]
    # Problems are reported once by PreviewSite; tornado would log every failing request.
    logging.getLogger("tornado.access").disabled = True
    sockets = [socket.socket(fileno=fd) for fd in fds]
    for sock in sockets:
        sock.setblocking(False)
    try:
        site = PreviewSite(root)
    except SiteError as exc:  # a mistake in site.py: the parent shows it until it is fixed
        message = exc.format_message()
        echo(message)
        os.write(hand_over_fd, STARTUP_FAILED + message.encode())
        return 1
    server = PreviewServer(site, hosts)

    def tell_parent() -> None:
        os.write(hand_over_fd, HANDED_OVER)
        os.close(hand_over_fd)

    server.on_hand_over = tell_parent
    loop = IOLoop.current()
    server.listen(sockets)
    server.watcher.start(loop)
    parent = os.getppid()
    # An orphaned child (the parent was killed) stops instead of holding the port.
    PeriodicCallback(lambda: os.getppid() != parent and loop.stop(), 1000).start()
    try:
        loop.start()
    except KeyboardInterrupt:
        pass
    finally:
        server.watcher.stop()
    return 0
