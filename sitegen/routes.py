"""The site's routes in the app: a URL converter per collection, listing pages, and every URL to freeze.

``<events:event>`` in a rule hands the view the record whose slug is in the
URL (an unknown slug is a 404), and ``url_for(..., event=record)`` takes a
record or a slug. Because the converter says which collection a parameter
walks, freeze lists one URL per record without being told; a parameter it
cannot list is an error naming the route.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from flask import Flask, abort, g, has_app_context, render_template, url_for
from werkzeug.routing import BaseConverter, ValidationError

from .errors import SiteError
from .site import Site

PAGE_ARGUMENT = "number"


@dataclass(frozen=True)
class MissingRecord:
    """What a URL asked for that is not there, for the 404 page: ``missing.collection``, ``missing.slug``."""

    collection: str
    slug: str


class CollectionConverter(BaseConverter):
    """A URL part naming one record of ``collection``; an unknown one is a 404 that says what was missing."""

    collection = ""

    def to_python(self, value: str) -> Any:
        records = self.map.sitegen_app.extensions["site_content"].collections[self.collection]
        try:
            return records[value]
        except KeyError:
            if has_app_context():
                g.missing_record = MissingRecord(self.collection, value)
            raise ValidationError() from None

    def to_url(self, value: Any) -> str:
        return value if isinstance(value, str) else value.slug


@dataclass
class Page:
    """One listing page: its records and the way to the others."""

    collection: str
    number: int
    count: int  # how many listing pages there are
    total: int  # records in the collection
    records: list[Any]

    @property
    def previous_url(self) -> str | None:
        return self.url(self.number - 1) if self.number > 1 else None

    @property
    def next_url(self) -> str | None:
        return self.url(self.number + 1) if self.number < self.count else None

    def url(self, number: int) -> str:
        return url_for(self.collection, **{PAGE_ARGUMENT: number})


def page_count(records: int, per_page: int | None) -> int:
    return max(1, math.ceil(records / per_page)) if per_page else 1


def register_site(app: Flask, site: Site) -> None:
    """Add the site's converters, routes and listing pages to ``app``."""
    app.url_map.sitegen_app = app  # the converters find the app's content through their map
    for name in site.collections:
        if name in app.url_map.converters:
            raise SiteError(f"collection {name!r}: the name is taken by Flask's URL converter {name!r}")
        app.url_map.converters[name] = type(f"{name.title()}Converter", (CollectionConverter,),
                                            {"collection": name})
    taken: dict[str, str] = {}
    for route in site.routes:
        _claim(taken, route.endpoint, f"route {route.rule!r}")
        app.add_url_rule(route.rule, route.endpoint, route.view, methods=list(route.methods))
    for name, collection in site.collections.items():
        if collection.listing:
            _claim(taken, name, f"the listing of collection {name!r}")
            view = _listing_view(site, name)
            app.add_url_rule(collection.listing, name, view, defaults={PAGE_ARGUMENT: 1})
            if collection.per_page:
                app.add_url_rule(f"{collection.listing}page/<int:{PAGE_ARGUMENT}>/", name, view)
            enumerate_pages(app, name, lambda app, counts, name=name, per_page=collection.per_page: [
                {PAGE_ARGUMENT: number} for number in range(1, page_count(counts[name], per_page) + 1)])


def enumerate_pages(app: Flask, endpoint: str,
                    values: Callable[[Flask, dict[str, int]], list[dict[str, Any]]]) -> None:
    """Tell freeze the URLs of a route the engine owns, from the number of records in each collection."""
    app.extensions.setdefault("sitegen_enumerated", {})[endpoint] = values


def _claim(taken: dict[str, str], endpoint: str, what: str) -> None:
    if endpoint in taken:
        raise SiteError(f"site.py: {what} and {taken[endpoint]} both use the name {endpoint!r}; "
                        "give one an endpoint= of its own")
    taken[endpoint] = what


def _listing_view(site: Site, name: str) -> Callable[..., Any]:
    collection = site.collections[name]

    def listing(**values: int) -> str:
        from .content.loader import current_content

        number = values[PAGE_ARGUMENT]
        records = current_content().collections[name]
        total = len(records)
        count = page_count(total, collection.per_page)
        if number < 1 or number > count:
            abort(404)
        per_page = collection.per_page or total
        page = Page(name, number, count, total, records.slice((number - 1) * per_page, number * per_page))
        return render_template(collection.template, page=page, records=page.records)

    listing.__name__ = name
    return listing


# ---------------------------------------------------------------- what freeze renders

@dataclass(frozen=True)
class RecordRoute:
    endpoint: str
    collection: str
    argument: str


def record_routes(app: Flask) -> list[RecordRoute]:
    """The site's routes with one page per record; raises SiteError for a route freeze cannot list."""
    found = []
    site = app.extensions.get("sitegen_site")
    site_endpoints = {route.endpoint for route in site.routes} if site else set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint not in site_endpoints:  # the engine's own pages, and the preview's live pages
            continue
        arguments = set(rule.arguments) - set(rule.defaults or ())
        if not arguments:
            continue
        converters = {name: rule._converters.get(name) for name in arguments}  # Werkzeug keeps them there
        collections = [(name, c.collection) for name, c in converters.items()
                       if isinstance(c, CollectionConverter)]
        if len(arguments) != 1 or len(collections) != 1:
            code = getattr(app.view_functions[rule.endpoint], "__code__", None)
            where = f"site.py:{code.co_firstlineno}" if code else "site.py"
            raise SiteError(f"{where}: route {rule.rule!r} ({rule.endpoint}): freeze cannot list its URLs; "
                            "give it exactly one parameter typed with a collection, as in <events:event> "
                            "(for a page per tag, declare the tags as a collection)")
        found.append(RecordRoute(rule.endpoint, collections[0][1], collections[0][0]))
    return found


def enumerated_urls(app: Flask, counts: dict[str, int]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The engine's own parameterized pages (listing pages, sitemap parts), as (endpoint, values)."""
    for endpoint, enumerate_values in app.extensions.get("sitegen_enumerated", {}).items():
        for values in enumerate_values(app, counts):
            yield endpoint, values
