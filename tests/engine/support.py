"""Helpers of the engine's tests (fixtures are in conftest.py): the fixture sites, parsing pages, signing in."""

from __future__ import annotations

from pathlib import Path

from bs4 import BeautifulSoup

SITES = Path(__file__).resolve().parent / "sites"
REPO = Path(__file__).resolve().parents[2]  # the repository: the engine's code, its .gitignore
EXAMPLE = SITES / "example"  # shaped like the repository's example site, with content of its own

LIVE_USER, LIVE_PASSWORD = "ada", "correct horse battery staple"
API_KEY = "test-api-key-0123456789"


def parse_html(data: bytes | str) -> BeautifulSoup:
    return BeautifulSoup(data, "html.parser")


def csrf_token(client, path: str = "/login") -> str:
    """The CSRF token of the form on ``path``, as a browser would submit it."""
    return parse_html(client.get(path).data).find("input", {"name": "csrf_token"})["value"]


def sign_in(client, username: str = LIVE_USER, password: str = LIVE_PASSWORD, **extra):
    data = {"csrf_token": csrf_token(client), "username": username, "password": password, **extra}
    return client.post("/login", data=data)
