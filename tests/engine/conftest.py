"""Fixtures of the engine's tests: a fixture site shaped like the example, as an app, a client,
and one frozen build; a private copy of a fixture site that a test may break.

The engine's tests never read the repository's own content/: a site owner
replaces it at will. The frozen build is made once per session into a
temporary folder, never into a build/ folder of the repository.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from sitegen.app import create_app
from sitegen.content.loader import load_content
from sitegen.freeze import freeze_site
from sitegen.site import load_site
from support import (API_KEY, EXAMPLE, LIVE_PASSWORD, LIVE_USER, PREVIEW_ENV, REPO, SITES, PreviewProcess,
                     WatchProcess, copy_site, make_preview_project)



@pytest.fixture(autouse=True)
def secret_key_from_environment(monkeypatch):
    """Preview apps made on the repository itself take their key from here, so
    no test writes a generated instance/secret_key into the repository."""
    monkeypatch.setenv("SITE_SECRET_KEY", "test-secret-key-0123456789")


@pytest.fixture(scope="session")
def example_site():
    return load_site(EXAMPLE)


@pytest.fixture
def app(example_site, example_content):
    return create_app(example_site, example_content, config={"TESTING": True})


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def git_ignored(tmp_path_factory):
    """``git_ignored(*paths)``: those of the paths that the project's .gitignore keeps out of git.

    Git is asked in a scratch repository holding only that .gitignore, so the
    answer is the same in a git checkout and in a copy made from a tarball.
    """
    if shutil.which("git") is None:
        pytest.skip("needs git, to ask which paths the project's .gitignore keeps out")
    scratch = tmp_path_factory.mktemp("gitignore")
    shutil.copyfile(REPO / ".gitignore", scratch / ".gitignore")
    # Without the user's own configuration and global ignore file, which could hide a missing entry.
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
           "XDG_CONFIG_HOME": str(scratch / "config")}
    subprocess.run(["git", "init", "--quiet"], cwd=scratch, check=True, env=env)

    def ignored(*paths: str) -> list[str]:
        result = subprocess.run(["git", "check-ignore", *paths], cwd=scratch, capture_output=True, text=True,
                                env=env)
        return result.stdout.split()

    return ignored


@pytest.fixture
def make_project(tmp_path):
    """A private copy of a fixture site (the example's shape by default) that a test may break at will."""

    def make(name: str = "example") -> Path:
        return copy_site(SITES / name, tmp_path / "project")

    return make


@pytest.fixture
def watch_freeze():
    """Start ``freeze --watch`` on a project (``watch_freeze(root, *options)``); stopped after the test."""
    started: list[WatchProcess] = []

    def start(root: Path, *args: str) -> WatchProcess:
        started.append(WatchProcess(root, *args))
        return started[-1]

    yield start
    for watcher in started:
        watcher.kill()


@pytest.fixture(scope="session")
def frozen_build(tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("frozen") / "build"
    freeze_site(EXAMPLE, dest)
    return dest


@pytest.fixture(scope="session")
def example_content(example_site):
    return load_content(example_site)


# ---------------------------------------------------------------- the live pages (preview only)


@pytest.fixture
def make_live_app(tmp_path, example_site, example_content):
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
        return create_app(example_site, content or example_content, live=True, config=settings)

    return make


@pytest.fixture
def live_app(make_live_app):
    return make_live_app()


@pytest.fixture
def live_client(live_app):
    return live_app.test_client()


@pytest.fixture(scope="module")
def running_preview(tmp_path_factory):
    """One preview process per test module, as ``python site.py preview`` runs it."""
    server = PreviewProcess(make_preview_project(tmp_path_factory.mktemp("preview") / "project"),
                            env=PREVIEW_ENV)
    yield server
    server.stop()
