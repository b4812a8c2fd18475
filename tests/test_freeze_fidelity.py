"""The fast freeze writes exactly what stock Frozen-Flask writes, and its client answers like Flask's."""

from __future__ import annotations

from pathlib import Path

import flask_frozen
from flask_frozen import Freezer

from conftest import REPO
from sitegen.app import create_app
from sitegen.content import load_content
from sitegen.freeze import MARKER, freeze_site
from sitegen.freeze_client import FreezeClient
from sitegen.render import STATIC_IGNORE, register_generators
from test_freeze import snapshot
from test_freeze_incremental import add_users


def stock_freeze(root: Path, dest: Path, base_url: str | None = None) -> None:
    """Frozen-Flask as documented: default configuration, stock client, one process.

    Only the site's own choice of static files to leave out is shared.
    """
    content = load_content(root)
    app = create_app(root, content, base_url=base_url,
                     config={"FREEZER_DESTINATION": str(dest), "FREEZER_STATIC_IGNORE": STATIC_IGNORE})
    app.config["FREEZER_BASE_URL"] = app.config["SITE_BASE_URL"]
    freezer = Freezer(app)
    register_generators(freezer, {"users": list(content.users), "stores": list(content.stores)})
    freezer.freeze()


def test_the_client_was_checked_against_this_frozen_flask():
    # FreezeClient and the per-worker Freezer rely on how this release calls the client.
    assert flask_frozen.VERSION == "1.0.2"


def test_parallel_freeze_writes_what_stock_frozen_flask_writes(make_project, tmp_path):
    root = make_project()
    add_users(root, 80)
    stock, ours = tmp_path / "stock", tmp_path / "ours"
    stock_freeze(root, stock)
    freeze_site(root, ours, jobs=2)
    ours_files = snapshot(ours)
    assert ours_files.pop(MARKER)
    assert ours_files == snapshot(stock)


def test_sub_path_freeze_writes_what_stock_frozen_flask_writes(tmp_path):
    stock, ours = tmp_path / "stock", tmp_path / "ours"
    stock_freeze(REPO, stock, base_url="https://example.org/sub/")
    freeze_site(REPO, ours, base_url="https://example.org/sub/", jobs=2)
    ours_files = snapshot(ours)
    assert ours_files.pop(MARKER)
    assert ours_files == snapshot(stock)


def test_freeze_client_answers_like_the_stock_client(app):
    base_url = "https://wordsmiths.example.org/sub/"
    urls = ["/", "/users/", "/users/ada-lovelace/", "/stores/berlin/", "/sitemap.xml", "/robots.txt",
            "/static/styles/site.css", "/404.html", "/users/nobody/", "/stores/café/", "/users"]
    for url in urls:
        app.test_client_class = None
        stock = app.test_client().get(url, follow_redirects=True, base_url=base_url)
        app.test_client_class = FreezeClient
        light = app.test_client().get(url, follow_redirects=True, base_url=base_url)
        assert (light.status, light.mimetype, light.data) == (stock.status, stock.mimetype, stock.data), url
        assert sorted(light.headers.items()) == sorted(stock.headers.items()), url
