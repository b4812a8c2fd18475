"""The fast freeze writes exactly what stock Frozen-Flask writes, and its fetcher answers like the test client."""

from __future__ import annotations

import warnings
from pathlib import Path

import flask_frozen
import pytest
from flask import Flask, redirect
from flask_frozen import Freezer

from support import EXAMPLE
from sitegen.app import create_app
from sitegen.site import load_site
from sitegen.content.loader import load_content
from sitegen.freeze.fetch import Fetcher
from sitegen.freeze import freeze_site
from sitegen.freeze.build import MARKER
from sitegen.freeze.render import STATIC_IGNORE, ShareFreezer, register_generators
from support import snapshot
from test_freeze_incremental import add_users


def stock_freeze(root: Path, dest: Path, base_url: str | None = None) -> None:
    """Frozen-Flask as documented: default configuration, stock client, one process.

    Only the site's own choice of static files to leave out is shared.
    """
    site = load_site(root)
    content = load_content(site)
    app = create_app(site, content, base_url=base_url,
                     config={"FREEZER_DESTINATION": str(dest), "FREEZER_STATIC_IGNORE": STATIC_IGNORE})
    app.config["FREEZER_BASE_URL"] = app.config["SITE_BASE_URL"]
    freezer = Freezer(app)
    register_generators(freezer, {"users": list(content.users), "stores": list(content.stores)})
    with warnings.catch_warnings():  # the sitemap's parts: none for a site under 50,000 pages
        warnings.filterwarnings("ignore", "Nothing frozen for endpoints sitegen.sitemap_part")
        freezer.freeze()


def test_the_page_build_was_checked_against_this_frozen_flask():
    # The per-worker Freezer replaces how this release builds pages (ShareFreezer.freeze_pages).
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
    stock_freeze(EXAMPLE, stock, base_url="https://example.org/sub/")
    freeze_site(EXAMPLE, ours, base_url="https://example.org/sub/", jobs=2)
    ours_files = snapshot(ours)
    assert ours_files.pop(MARKER)
    assert ours_files == snapshot(stock)


def test_fetcher_answers_like_the_stock_client(app):
    base_url = "https://wordsmiths.example.org/sub/"
    urls = ["/", "/users/", "/users/ada-lovelace/", "/stores/berlin/", "/sitemap.xml", "/robots.txt",
            "/static/styles/site.css", "/404.html", "/users/nobody/", "/stores/café/", "/users",
            "/users/ada%2Dlovelace/", "/users/ada+lovelace/", "/users/ada lovelace/"]
    fetcher = Fetcher(app, base_url)
    for url in urls:
        stock = app.test_client().get(url, base_url=base_url)
        fetched = fetcher.get(url)
        assert fetched == (stock.status_code, stock.content_type, stock.mimetype, stock.data), url


def small_app(dest: Path) -> Flask:
    app = Flask(__name__)
    app.config.update(FREEZER_DESTINATION=str(dest), FREEZER_REDIRECT_POLICY="follow")
    app.add_url_rule("/page/", "page", lambda: "<p>a page</p>")
    app.add_url_rule("/moved/", "moved", lambda: redirect("/page/"))
    app.add_url_rule("/missing/", "missing", lambda: ("no such page", 404))
    app.add_url_rule("/feed.xml", "feed", lambda: "<feed/>")  # served as text/html
    return app


@pytest.mark.parametrize("url", ["/page/", "/moved/", "/missing/", "/feed.xml"])
def test_share_freezer_builds_a_page_as_frozen_flask_does(tmp_path, url):
    stock = Freezer(small_app(tmp_path / "stock"), with_static_files=False)
    share = ShareFreezer(small_app(tmp_path / "share"), {}, [])
    outcomes = []
    for freezer, build in ((stock, lambda: stock._build_one(url).relative_to(stock.root).as_posix()),
                           (share, lambda: share._build_page(url))):
        freezer.root.mkdir(parents=True)
        with warnings.catch_warnings(record=True) as warned:
            warnings.simplefilter("always")
            try:
                file = build()
                outcome = (file, (freezer.root / file).read_bytes())
            except ValueError as exc:
                outcome = ("failed", str(exc))
        outcomes.append((outcome, [(w.category, str(w.message)) for w in warned]))
    assert outcomes[0] == outcomes[1]
