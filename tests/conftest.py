"""Shared fixtures: the example site as an app, a client, and one frozen build.

The frozen build is made once per session into a temporary folder, never
into the repository's own build/.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from urllib.parse import urlencode

import pytest
from bs4 import BeautifulSoup

from sitegen.app import create_app
from sitegen.content import load_content
from sitegen.freeze import freeze_site

REPO = Path(__file__).resolve().parent.parent
PROJECT_PARTS = ("content", "templates", "static")


@pytest.fixture(autouse=True)
def secret_key_from_environment(monkeypatch):
    """Preview apps made on the repository itself take their key from here, so
    no test writes a generated instance/secret_key into the repository."""
    monkeypatch.setenv("SITE_SECRET_KEY", "test-secret-key-0123456789")


@pytest.fixture
def app():
    return create_app(REPO, load_content(REPO), config={"TESTING": True})


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def make_project(tmp_path):
    """A private copy of the example project that a test may break at will."""

    def make() -> Path:
        root = tmp_path / "project"
        for part in PROJECT_PARTS:
            shutil.copytree(REPO / part, root / part)
        return root

    return make


@pytest.fixture(scope="session")
def frozen_build(tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("frozen") / "build"
    freeze_site(REPO, dest)
    return dest


@pytest.fixture(scope="session")
def example_content():
    return load_content(REPO)


def parse_html(data: bytes | str) -> BeautifulSoup:
    return BeautifulSoup(data, "html.parser")


# ---------------------------------------------------------------- the live pages (preview only)

LIVE_USER, LIVE_PASSWORD = "ada", "correct horse battery staple"
API_KEY = "test-api-key-0123456789"


@pytest.fixture
def make_live_app(tmp_path, example_content):
    """A preview app with the live pages; accounts, uploads and secrets stay in tmp_path.

    Accounts are hashed with cheap PBKDF2 so that logging in many times stays fast.
    """
    from werkzeug.security import generate_password_hash

    from sitegen.live.accounts import save_accounts

    accounts = tmp_path / "accounts.yaml"
    save_accounts(accounts, {LIVE_USER: generate_password_hash(LIVE_PASSWORD, "pbkdf2:sha256:1000")})

    def make(content=None, **config):
        settings = {"TESTING": True, "SECRET_KEY": "test-secret-key-0123456789",
                    "SITE_ACCOUNTS_FILE": accounts, "SITE_UPLOAD_FOLDER": tmp_path / "uploads",
                    "SITE_API_KEY": API_KEY, **config}
        return create_app(REPO, content or example_content, live=True, config=settings)

    return make


@pytest.fixture
def live_app(make_live_app):
    return make_live_app()


@pytest.fixture
def live_client(live_app):
    return live_app.test_client()


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


PREVIEW_ENV = {"SITE_API_KEY": API_KEY, "SITE_SECRET_KEY": "test-secret-key-0123456789",
               "SITE_UPLOAD_LIMIT": "100KB"}


def make_preview_project(root: Path) -> Path:
    """A copy of the example project with the live pages' account in instance/."""
    from werkzeug.security import generate_password_hash

    from sitegen.live.accounts import ACCOUNTS_FILE, save_accounts

    for part in PROJECT_PARTS:
        shutil.copytree(REPO / part, root / part)
    save_accounts(root / ACCOUNTS_FILE, {LIVE_USER: generate_password_hash(LIVE_PASSWORD, "pbkdf2:sha256:1000")})
    return root


@pytest.fixture(scope="module")
def running_preview(tmp_path_factory):
    """One preview process per test module, as ``python site.py preview`` runs it."""
    server = PreviewProcess(make_preview_project(tmp_path_factory.mktemp("preview") / "project"),
                            env=PREVIEW_ENV)
    yield server
    server.stop()


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
