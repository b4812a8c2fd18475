"""Shared fixtures: the example site as an app, a client, and one frozen build.

The frozen build is made once per session into a temporary folder, never
into the repository's own build/.
"""

from __future__ import annotations

import shutil
from pathlib import Path

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
