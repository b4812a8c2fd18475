"""The fast freeze writes exactly what stock Frozen-Flask writes, and its fetcher answers like the test client.

The freeze renders a page by calling its view in a request context made once
(Fetcher.render), not through a whole request: every page of every fixture
site is compared with what the Flask app answers a real client.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import flask_frozen
import pytest
from flask import Flask, abort, after_this_request, redirect
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
    register_generators(freezer, {name: list(records) for name, records in content.collections.items()})
    with warnings.catch_warnings():  # the sitemap's parts: none for a site under 50,000 pages
        warnings.filterwarnings("ignore", "Nothing frozen for endpoints sitegen.sitemap_part")
        freezer.freeze()


def test_the_page_build_was_checked_against_this_frozen_flask():
    # The per-worker Freezer replaces how this release builds pages (ShareFreezer.freeze_pages).
    assert flask_frozen.VERSION == "1.0.2"


@pytest.mark.parametrize("site", ["example", "events"])
def test_parallel_freeze_writes_what_stock_frozen_flask_writes(make_project, tmp_path, site):
    root = make_project(site)
    if site == "example":
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


@pytest.mark.parametrize("site", ["example", "events"])
@pytest.mark.parametrize("base_url", [None, "https://example.org/sub/"])
def test_every_page_renders_as_the_flask_app_answers_a_client(make_project, tmp_path, site, base_url):
    root = make_project(site)
    if site == "example":
        add_users(root, 30)  # two listing pages
    stock = tmp_path / "stock"
    stock_freeze(root, stock, base_url)
    loaded = load_site(root)
    app = create_app(loaded, load_content(loaded), base_url=base_url, config={"PROPAGATE_EXCEPTIONS": True})
    client_base = app.config["SITE_BASE_URL"]
    fetcher = Fetcher(app, client_base)
    full_requests = []
    full_request = fetcher.get
    fetcher.get = lambda url: full_requests.append(url) or full_request(url)
    urls = ["/" + file.removesuffix("index.html") for file in snapshot(stock)]
    listing_page = next(url for url in urls if url.endswith("/page/2/"))
    record_page = next(url for url in urls if url.count("/") == 3 and url.endswith("/") and "/page/" not in url)
    assert len(urls) > 15
    # And what a freeze never asks for: no such page, a page past the last, a URL that redirects.
    for url in urls + ["/no/such/page/", listing_page.replace("/2/", "/99/"), record_page.rstrip("/")]:
        answer = app.test_client().get(url, base_url=client_base)
        assert fetcher.render(url) == (answer.status_code, answer.content_type, answer.mimetype, answer.data), url
    assert len(full_requests) == 3  # only those three went the whole way through Flask


def test_a_view_that_answers_other_than_with_text_renders_as_flask_answers(tmp_path):
    app = small_app(tmp_path)
    app.config["PROPAGATE_EXCEPTIONS"] = True
    app.add_url_rule("/later/", "later", lambda: after_this_request(lambda response: response) and "<p>later</p>")
    app.add_url_rule("/gone/", "gone", lambda: abort(410))
    fetcher = Fetcher(app, None)
    for url in ["/page/", "/moved/", "/missing/", "/feed.xml", "/later/", "/gone/"]:
        answer = app.test_client().get(url)
        assert fetcher.render(url) == (answer.status_code, answer.content_type, answer.mimetype, answer.data), url


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


def test_settled_template_globals_render_as_jinjas_own():
    """settle_template_globals gives templates a dict of the globals instead of a ChainMap: the same
    names, a template's own globals first."""
    from jinja2 import Environment

    from sitegen.freeze.render import settle_template_globals

    def render(env: Environment) -> str:
        return env.from_string("{{ shared }} {{ own }} {{ both }}", globals={"own": 1, "both": "mine"}).render()

    stock, settled = Environment(), Environment()
    for env in (stock, settled):
        env.globals.update(shared="env", both="env's")
    settle_template_globals(settled)
    assert render(settled) == render(stock) == "env 1 mine"
    assert type(settled.from_string("x").globals) is dict
