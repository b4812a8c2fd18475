"""Helpers of the engine's tests (fixtures are in conftest.py): the fixture sites, parsing pages, signing in."""

from __future__ import annotations

import http.client
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

from bs4 import BeautifulSoup

from sitegen.testing import snapshot  # noqa: F401  (the tests take it from here)

SITES = Path(__file__).resolve().parent / "sites"
REPO = Path(__file__).resolve().parents[2]  # the repository: the engine's code, its .gitignore
EXAMPLE = SITES / "example"  # shaped like the repository's example site, with content of its own

PROJECT_PARTS = ("site.py", "content", "templates", "static")

LIVE_USER, LIVE_PASSWORD = "ada", "correct horse battery staple"
API_KEY = "test-api-key-0123456789"


class Crash(BaseException):
    """A process dying where it stands (a kill, a power cut), raised where a test wants it: unlike
    Ctrl-C (KeyboardInterrupt), nothing in sitegen answers it by tidying up."""


def parse_html(data: bytes | str) -> BeautifulSoup:
    return BeautifulSoup(data, "html.parser")


def check_random_edits_match_a_clean_freeze(root: Path, scratch: Path, edits: list, *, seed: int, steps: int) -> None:
    """Apply 1-3 of ``edits`` (each ``edit(root, rng)``) per step, freezing after each; every
    incremental build must equal a clean freeze of the same sources."""
    import random

    from sitegen.freeze import freeze_site

    rng = random.Random(seed)
    freeze_site(root, root / "build", jobs=2)
    for step in range(steps):
        for edit in rng.sample(edits, rng.randint(1, 3)):
            edit(root, rng)
        freeze_site(root, root / "build", jobs=2)
        clean = scratch / f"clean-{seed}-{step}" / "build"
        freeze_site(root, clean, jobs=1, clean=True)
        assert snapshot(root / "build") == snapshot(clean), f"seed {seed}, step {step}"


def copy_site(site: Path, root: Path) -> Path:
    """A private copy of a fixture site (its site.py, content, templates and static files) at ``root``."""
    root.mkdir(parents=True)
    for part in PROJECT_PARTS:
        if (site / part).is_dir():
            shutil.copytree(site / part, root / part)
        elif (site / part).exists():
            shutil.copy2(site / part, root / part)
    return root


def csrf_token(client, path: str = "/login") -> str:
    """The CSRF token of the form on ``path``, as a browser would submit it."""
    return parse_html(client.get(path).data).find("input", {"name": "csrf_token"})["value"]


def sign_in(client, username: str = LIVE_USER, password: str = LIVE_PASSWORD, **extra):
    data = {"csrf_token": csrf_token(client), "username": username, "password": password, **extra}
    return client.post("/login", data=data)


# ---------------------------------------------------------------- a running preview, over HTTP

class PreviewProcess:
    """``python site.py --root ROOT preview --port 0``, its URL read from its first line.

    ``engine`` runs another copy of the engine (a folder holding site.py and
    sitegen/), so a test can edit its Python files without touching this one.
    """

    def __init__(self, root: Path, *, engine: Path = REPO, env: dict[str, str] | None = None):
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, str(engine / "site.py"), "--root", str(root), "preview", "--port", "0"],
            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})
        first = self.process.stderr.readline()
        match = re.search(r"at (http://\S+/) ", first)
        assert match, f"preview did not start: {first!r}"
        self.url = match.group(1)
        self.port = int(self.url.rsplit(":", 1)[1].strip("/"))
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self) -> None:
        for line in self.process.stderr:
            self.lines.append(line)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


class WatchProcess:
    """``python site.py --root ROOT freeze --watch``, its output collected line by line as it comes.

    Started once it says it is watching; ``kill`` (the fixture's finalizer) never leaves it running.
    """

    def __init__(self, root: Path, *args: str):
        self.root = root
        self.out: list[str] = []
        self.err: list[str] = []
        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
            # Run in the background (nohup, a shell's &), the suite would pass SIGINT on ignored and
            # the watcher would never hear the Ctrl-C the tests send; a handler is not inherited.
            signal.signal(signal.SIGINT, signal.default_int_handler)
        self.process = subprocess.Popen(
            [sys.executable, str(REPO / "site.py"), "--root", str(root), "freeze", "--watch", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for stream, lines in ((self.process.stdout, self.out), (self.process.stderr, self.err)):
            threading.Thread(target=self._collect, args=(stream, lines), daemon=True).start()
        self.wait_for(lambda: self.watching() >= 1, "the watcher to start")

    @staticmethod
    def _collect(stream, lines: list[str]) -> None:
        for line in stream:
            lines.append(line.rstrip("\n"))

    def watching(self) -> int:
        """How many times it said it is watching: once per process it became (a restart says it again)."""
        return sum(line.startswith("Watching ") for line in self.err)

    def wait_for(self, condition, what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise AssertionError(f"waited for {what}; out: {self.out}; err: {self.err}")
            time.sleep(0.01)

    def interrupt(self) -> int:
        """Ctrl-C; its exit status."""
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(30)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


PREVIEW_ENV = {"SITE_API_KEY": API_KEY, "SITE_SECRET_KEY": "test-secret-key-0123456789",
               "SITE_UPLOAD_LIMIT": "100KB"}


def make_preview_project(root: Path) -> Path:
    """A copy of the example fixture site with the live pages' account in instance/."""
    from werkzeug.security import generate_password_hash

    from sitegen.live.accounts import ACCOUNTS_FILE, save_accounts

    copy_site(EXAMPLE, root)
    save_accounts(root / ACCOUNTS_FILE, {LIVE_USER: generate_password_hash(LIVE_PASSWORD, "pbkdf2:sha256:1000")})
    return root


class Visitor:
    """A browser's part of HTTP, by hand: cookies, forms, and any Host or framing it likes."""

    def __init__(self, port: int, source: str | None = None):
        self.port, self.cookies = port, {}
        self.source = (source, 0) if source else None  # another loopback address to come from

    def request(self, method: str, path: str, body=None, headers: dict | None = None):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15,
                                                source_address=self.source)
        sent = dict(headers or {})
        if self.cookies:
            sent.setdefault("Cookie", "; ".join(f"{k}={v}" for k, v in self.cookies.items()))
        connection.request(method, path, body=body, headers=sent,
                           encode_chunked=sent.get("Transfer-Encoding") == "chunked")
        response = connection.getresponse()
        response.body = response.read()
        connection.close()
        for cookie in response.headers.get_all("Set-Cookie") or []:
            name, _, value = cookie.split(";", 1)[0].partition("=")
            if value and "Max-Age=0" not in cookie:
                self.cookies[name] = value
            else:
                self.cookies.pop(name, None)
        return response

    def get(self, path: str, **headers):
        return self.request("GET", path, headers=headers)

    def csrf_token(self, path: str = "/login") -> str:
        return parse_html(self.get(path).body).find("input", {"name": "csrf_token"})["value"]

    def sign_in(self, username: str = LIVE_USER, password: str = LIVE_PASSWORD):
        form = urlencode({"csrf_token": self.csrf_token(), "username": username, "password": password})
        return self.request("POST", "/login", form, {"Content-Type": "application/x-www-form-urlencoded"})


def multipart(fields: list[tuple[str, str | tuple[bytes, bytes]]]) -> tuple[str, bytes]:
    """(content type, body) of a form: a value is text, or (file name bytes, content) for a file."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields:
        if isinstance(value, tuple):
            filename, data = value
            head = (f'Content-Disposition: form-data; name="{name}"; filename="'.encode()
                    + filename + b'"\r\nContent-Type: text/plain')
        else:
            head, data = f'Content-Disposition: form-data; name="{name}"'.encode(), value.encode()
        parts.append(b"--" + boundary.encode() + b"\r\n" + head + b"\r\n\r\n" + data + b"\r\n")
    body = b"".join(parts) + b"--" + boundary.encode() + b"--\r\n"
    return f"multipart/form-data; boundary={boundary}", body
