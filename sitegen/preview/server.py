"""The live preview: ``python site.py preview``.

livereload (on tornado) is kept for its server skeleton and its websocket
reload channel; the parts of livereload 2.7.1 that fall short are replaced
through its extension points (see README, "What preview fixes in livereload"):

- the WSGI app runs in tornado's WSGIContainer on a thread pool, so a slow
  request never stalls other requests or the reload channel;
- the reload client is injected by a WSGI middleware into text/html only,
  inside ``<!--preview-->…<!--/preview-->``, with a correct Content-Length;
- the websocket accepts pages of this server only and sends URL paths only;
- request bodies over the app's MAX_CONTENT_LENGTH are refused by tornado
  before they are buffered;
- files are watched by sitegen.preview.watch (native events, a quiet window, no
  dropped edits) and a change re-reads only the files that changed;
- a broken file shows an error page that heals itself, never a traceback;
- a Python edit restarts the app in a fresh child process while the parent
  keeps the listening socket, so the tab reconnects and reloads.

Only this module imports livereload.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import webbrowser
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
from tornado.ioloop import IOLoop, PeriodicCallback
from tornado.netutil import bind_sockets
from tornado.websocket import WebSocketClosedError, WebSocketHandler
from tornado.wsgi import WSGIContainer

from ..app import create_app
from ..content.loader import Content, check_references, load_content, reload_file
from ..site import Site, load_site
from ..errors import ContentError, ContentErrors, SiteError, describe_template_error
from ..live.views import insert_before_body_end, preview_only
from .watch import FileWatcher, Fingerprint, is_ignored

ENGINE_DIR = Path(__file__).resolve().parent.parent
SOURCE_FOLDERS = ("content", "templates", "static")
RELOAD_CHANNEL = "/.livereload"
RESTART_EXIT_CODE = 3
REQUEST_THREADS = 8
# Used when the app sets no MAX_CONTENT_LENGTH; the margin lets Flask answer
# a body slightly over its limit with its own 413.
DEFAULT_BODY_LIMIT = 16 * 1024 * 1024
BODY_LIMIT_MARGIN = 64 * 1024


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
        self._fingerprint = Fingerprint([*self.source_folders, ENGINE_DIR], files=site_code(self.root))
        self._load_everything()
        self.report()

    @property
    def source_folders(self) -> list[Path]:
        return [self.root / name for name in SOURCE_FOLDERS]

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
        static = self.root / "static"
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
        if errors:
            return self._error_page(start_response, errors, block, method)
        captured = {}

        def capture(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers
            return lambda data: None  # Flask never uses write()

        inner = dict(environ, REQUEST_METHOD="GET") if method == "HEAD" else environ
        try:
            body = app(inner, capture)
        except Exception as exc:
            return self._error_page(start_response, [self.site.page_failed(exc)], block, method)
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
    def _error_page(start_response, errors: list[str], block: bytes, method: str):
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

class ReloadChannel(LiveReloadHandler):
    """livereload's websocket, for pages of this server only, announcing the site's epoch.

    A client is registered as soon as it connects (livereload waits for an
    ``info`` message, leaving a gap where a reload is missed) and is told the
    current epoch, so a page rendered before a change it missed reloads.
    """

    def initialize(self, site: PreviewSite) -> None:
        self.site = site

    def check_origin(self, origin: str) -> bool:
        # livereload accepts any origin; tornado's own check is same-origin.
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


class PreviewServer(Server):
    """livereload's Server running the app on a thread pool behind a size-limited HTTP server."""

    def __init__(self, site: PreviewSite):
        watcher = FileWatcher([*site.source_folders, ENGINE_DIR], self.changed, top_level=[site.root])
        super().__init__(PreviewMiddleware(site), watcher=watcher)
        self.site = site
        self.exit_code = 0
        self.executor = ThreadPoolExecutor(REQUEST_THREADS, thread_name_prefix="preview-request")

    def get_web_handlers(self, script):
        """The app on a thread pool. ``script`` is livereload's snippet for its own
        injector, unused: PreviewMiddleware injects the client into HTML only."""
        container = WSGIContainer(self.app, executor=self.executor)
        return [(r".*", web.FallbackHandler, {"fallback": container})]

    def body_limit(self) -> int:
        app = self.site.app
        limit = app.config.get("MAX_CONTENT_LENGTH") if app else None
        return (limit or DEFAULT_BODY_LIMIT) + BODY_LIMIT_MARGIN

    def listen(self, sockets: list[socket.socket]) -> HTTPServer:
        """Serve on ``sockets``. Not livereload's serve(): it binds by itself (no socket
        kept across restarts), turns on tornado's debug mode and starts its polling."""
        handlers = [(RELOAD_CHANNEL, ReloadChannel, {"site": self.site}),
                    *self.get_web_handlers(script=None)]
        http_server = HTTPServer(web.Application(handlers, debug=False),
                                 max_body_size=self.body_limit())
        http_server.add_sockets(sockets)
        return http_server

    def changed(self, paths: set[Path]) -> None:
        """A batch of saved files: restart for engine or site code, else apply and tell the tabs."""
        code = sorted(p for p in paths
                      if p.is_relative_to(ENGINE_DIR) or p.suffix == ".py" and p.parent == self.site.root)
        if code:
            echo(f"{code[0].relative_to(code[0].parent.parent).as_posix()} changed: restarting")
            self.exit_code = RESTART_EXIT_CODE
            IOLoop.current().stop()
            return
        stylesheets = self.site.apply(paths)
        message = {"command": "reload", "epoch": self.site.epoch}
        if stylesheets:
            message.update(liveCSS=True, stylesheets=stylesheets)
        ReloadChannel.broadcast(message)


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
    child; a child that exits for a Python edit is started again at once, so
    connections wait in the socket's backlog instead of being refused.
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
    fds = [str(sock.fileno()) for sock in sockets]
    command = [sys.executable, "-c",
               "import sys; from sitegen.preview.server import child_main; sys.exit(child_main(sys.argv[1:]))",
               str(root), *fds]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(ENGINE_DIR.parent), os.environ.get("PYTHONPATH")]))}
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    child = None
    try:
        while True:
            child = subprocess.Popen(command, pass_fds=[int(fd) for fd in fds], env=env)
            code = child.wait()
            if code == RESTART_EXIT_CODE:
                continue
            if code in (0, -signal.SIGINT):
                return
            echo(f"the preview stopped (exit status {code}); it restarts when you save site.py "
                 f"or a file in {ENGINE_DIR.name}/")
            _wait_for_code_change(Path(root))
    except KeyboardInterrupt:
        pass
    finally:
        if child is not None and child.poll() is None:
            child.terminate()
            child.wait()


def _wait_for_code_change(root: Path) -> None:
    before = Fingerprint([ENGINE_DIR], files=site_code(root)).value
    while Fingerprint([ENGINE_DIR], files=site_code(root)).value == before:
        time.sleep(0.3)


def child_main(argv: list[str]) -> int:
    """The preview app's process: serve on the inherited sockets until told to restart."""
    root, fds = Path(argv[0]), [int(fd) for fd in argv[1:]]
    # Problems are reported once by PreviewSite; tornado would log every failing request.
    logging.getLogger("tornado.access").disabled = True
    sockets = [socket.socket(fileno=fd) for fd in fds]
    for sock in sockets:
        sock.setblocking(False)
    site = PreviewSite(root)
    server = PreviewServer(site)
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
    return server.exit_code
