"""What every site gets without declaring it: the sitemap, robots.txt, the 404 page, template globals.

The sitemap lists every HTML page the site has (a page's URL ends in ``/``:
it is frozen as ``<path>/index.html``), from the site's routes and
collections, with no hand-kept list. Past the sitemaps protocol's 50,000 URLs
it becomes a sitemap index over parts of at most that many.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Flask, Response, abort, current_app, g, render_template, request, url_for
from flask.globals import request_ctx
from werkzeug.routing import BuildError

from .content.loader import current_content
from .routes import PAGE_ARGUMENT, enumerate_pages, page_count, record_routes

blueprint = Blueprint("sitegen", __name__, template_folder="templates")

SITEMAP_LIMIT = 50_000  # URLs in one sitemap file (sitemaps.org)


def init_app(app: Flask) -> None:
    app.register_blueprint(blueprint)
    enumerate_pages(app, "sitegen.sitemap_part", _sitemap_part_urls)


@blueprint.app_context_processor
def site_globals() -> dict:
    content = current_content()
    return {"site": content.settings, "collections": content.collections, "absolute_url": absolute_url}


def absolute_url(endpoint: str, **values: Any) -> str:
    """The published URL of a page: the site's base URL, not the serving host.

    Preview and freeze print the same sitemap and canonical links this way.
    """
    path = page_url(endpoint, values)[len(request.script_root):]
    return current_app.config["SITE_BASE_URL"].rstrip("/") + path


def page_url(endpoint: str, values: dict[str, Any]) -> str:
    """``url_for(endpoint, **values)`` for a page, built straight from the request's URL adapter.

    Flask's url_for adds only relative endpoints ('.page'), its ``_anchor``-style
    options, url_defaults hooks (the engine's only one notes static files, see
    freeze/dependencies.py) and the wording of build errors: those go its way.
    2.5 µs instead of 7 (docs/speed.md): a freeze builds a canonical link and a
    sitemap entry for every page.
    """
    adapter = request_ctx.url_adapter
    if adapter is None or endpoint == "static" or endpoint[:1] == "." or any(name[:1] == "_" for name in values):
        return url_for(endpoint, **values)
    try:
        return adapter.build(endpoint, values)
    except BuildError:
        return url_for(endpoint, **values)


@blueprint.get("/404.html")
def not_found_page():
    """The page a static host shows for a missing URL (frozen as build/404.html)."""
    return render_template("404.html", missing=None)


@blueprint.app_errorhandler(404)
def not_found(error):
    """The 404 page; ``missing`` names the record a URL asked for, when that is why."""
    return render_template("404.html", missing=g.get("missing_record")), 404


@blueprint.get("/sitemap.xml")
def sitemap():
    parts = _sitemap_parts(_html_page_total())
    if parts == 1:
        return _xml(render_template("sitemap.xml", pages=[absolute_url(e, **v) for e, v in html_pages()]))
    return _xml(render_template("sitemap_index.xml", sitemaps=[
        absolute_url("sitegen.sitemap_part", number=number) for number in range(1, parts + 1)]))


@blueprint.get("/sitemaps/<int:number>.xml")
def sitemap_part(number: int):
    """One part's pages, taken from the pages as they are listed: a list of every page's values
    for each part took 250 MB at a million pages."""
    parts = _sitemap_parts(_html_page_total())
    if parts == 1 or not 1 <= number <= parts:
        abort(404)
    chunk = itertools.islice(html_pages(start=(number - 1) * SITEMAP_LIMIT), SITEMAP_LIMIT)
    return _xml(render_template("sitemap.xml", pages=[absolute_url(e, **v) for e, v in chunk]))


@blueprint.get("/robots.txt")
def robots():
    text = render_template("robots.txt", sitemap_url=absolute_url("sitegen.sitemap"))
    return Response(text, mimetype="text/plain")


def _xml(text: str) -> Response:
    return Response(text, mimetype="application/xml")


def _sitemap_parts(pages: int) -> int:
    return max(1, math.ceil(pages / SITEMAP_LIMIT))


def _sitemap_part_urls(app: Flask, counts: dict[str, int]) -> list[dict[str, Any]]:
    parts = _sitemap_parts(_html_page_count(app, counts))
    return [{"number": number} for number in range(1, parts + 1)] if parts > 1 else []


# ---------------------------------------------------------------- the site's HTML pages

def html_pages(start: int = 0) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every HTML page of the site but the 404, as (endpoint, values): pages, listings, record pages.

    From the ``start``-th on, skipping the pages before it without making
    their values: a sitemap part far into a million pages starts up to
    1,000,000 pages in, and listing the 21 parts took 0.98 s when each
    skipped its pages one value at a time, 0.33 s this way (timed over a
    plain dict of a million slugs).
    """
    app, site = current_app, current_app.extensions["sitegen_site"]
    collections = current_content().collections
    for route in site.routes:
        if "<" not in route.rule and route.rule.endswith("/"):
            if start:
                start -= 1
            else:
                yield route.endpoint, {}
    for name, collection in site.collections.items():
        if collection.listing:
            pages = page_count(len(collections[name]), collection.per_page)
            for number in range(start + 1, pages + 1):
                yield name, {PAGE_ARGUMENT: number}
            start = max(0, start - pages)
    for route in _html_record_routes(app):
        records = collections[route.collection]
        for slug in itertools.islice(records, start, None):
            yield route.endpoint, {route.argument: slug}
        start = max(0, start - len(records))


def _html_record_routes(app: Flask) -> list[Any]:
    rules = {rule.endpoint: rule.rule for rule in app.url_map.iter_rules()}
    return [route for route in record_routes(app) if rules[route.endpoint].endswith("/")]


def _html_page_total() -> int:
    """How many entries html_pages yields, counting each collection as html_pages does (its length)."""
    collections = current_content().collections
    return _html_page_count(current_app, _Lengths(collections))


class _Lengths:
    """Collection name -> its number of records, asked of the collection when needed."""

    def __init__(self, collections: Any):
        self.collections = collections

    def __getitem__(self, name: str) -> int:
        return len(self.collections[name])


def _html_page_count(app: Flask, counts: Any) -> int:
    """How many entries html_pages yields, from the number of records alone (to plan a freeze)."""
    site = app.extensions["sitegen_site"]
    total = sum(1 for route in site.routes if "<" not in route.rule and route.rule.endswith("/"))
    total += sum(page_count(counts[name], c.per_page) for name, c in site.collections.items() if c.listing)
    return total + sum(counts[route.collection] for route in _html_record_routes(app))
