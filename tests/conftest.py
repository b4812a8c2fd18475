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
