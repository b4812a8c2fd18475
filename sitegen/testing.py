"""sitegen's pytest plugin: a site's own tests, run on its frozen output.

Installed with the engine (``pip install -e '.[test]'``), pytest loads it
through the ``pytest11`` entry point; a site's tests need no conftest.py.

Fixtures (see docs/testing.md):

* ``frozen_site``: the site frozen once per session into a temporary folder
  (never build/), with its pages parsed and each record's page found;
* ``site_content``: the site's settings and collections (``site_content.users``);
* ``preview_client``: a test client of the preview, as ``python site.py preview`` serves it;
* ``sitegen_site``, ``sitegen_root``, ``sitegen_hidden_fields``: what the others are made of,
  each overridable in the site's tests/conftest.py.

Generic checks: the ``test_*`` functions of this module. A site turns them all
on with one line in a test module::

    from sitegen.testing import *  # noqa: F401,F403

A failure names the page (its URL and its file in the build) and, for a
record's page, the record's content file.

Importing this module has no side effects; nothing else in sitegen imports it
(pytest is a test extra).
"""

from __future__ import annotations

import datetime as dt
import difflib
import html
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urljoin, urlsplit

import pytest

if TYPE_CHECKING:
    from bs4 import BeautifulSoup
    from werkzeug.test import Client

    from .content.loader import Content
    from .site import Site

__all__ = [
    "test_every_record_has_its_page_showing_its_fields",
    "test_every_internal_link_and_asset_resolves",
    "test_every_page_is_in_the_sitemap",
    "test_no_preview_only_url_form_or_file_in_the_build",
    "test_preview_serves_what_freeze_writes",
    "test_every_page_is_well_formed_html",
    "test_a_second_freeze_is_byte_identical",
]

PREVIEW_BLOCK = re.compile(rb"<!--preview-->.*?<!--/preview-->", re.DOTALL)
SITEMAP_NS = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
MAX_SHOWN = 30  # problems listed in one failure; the rest are counted
FREEZE_JOBS = 2  # worker processes of a test freeze: the suite runs on small machines
TEST_SECRET_KEY = "sitegen-testing-preview-key-0123456789"


# ---------------------------------------------------------------- the frozen site


def collapse(text: str) -> str:
    """Text as a reader compares it: runs of white space as one space, case folded."""
    return " ".join(text.split()).casefold()


@dataclass
class Page:
    """One HTML file of the build: its URL (below the base path), its file, the record it shows if any."""

    url: str  # "/users/ada-lovelace/": the path a link names, without the base URL's path
    file: str  # "users/ada-lovelace/index.html", relative to the build folder
    data: bytes
    source: str | None = None  # "content/users/ada-lovelace.yaml" for a record's page

    @property
    def where(self) -> str:
        """The page as a failure names it: URL, file in the build, and the record's content file."""
        source = f", from {self.source}" if self.source else ""
        return f"{self.url} ({self.file}{source})"

    @cached_property
    def soup(self) -> BeautifulSoup:
        from bs4 import BeautifulSoup

        return BeautifulSoup(self.data, "html.parser")

    @cached_property
    def text(self) -> str:
        """The page's text, collapsed and case folded: what a visitor reads."""
        return collapse(self.soup.get_text(" "))

    @cached_property
    def searchable(self) -> str:
        """The text, then the unescaped source: a value may show in an attribute (a link, a datetime)."""
        return self.text + "\n" + collapse(html.unescape(self.data.decode("utf-8", "replace")))

    def links(self) -> Iterator[tuple[str, str]]:
        """(tag name, link) for every href, src and form action of the page."""
        for tag in self.soup.find_all(True):
            for attribute in ("href", "src", "action", "formaction"):
                if tag.get(attribute):
                    yield tag.name, tag[attribute].strip()


@dataclass
class RecordPage:
    """A record's page in the build, or where it should be (``page`` is None when it is missing)."""

    collection: str
    record: Any
    endpoint: str
    url: str
    file: str
    source: str  # the record's content file, "content/users/ada-lovelace.yaml"
    page: Page | None


@dataclass
class FrozenSite:
    """A site frozen into ``path``: its pages by URL, its records' pages, its settings and collections."""

    site: Site
    content: Content
    path: Path
    base_url: str
    pages: dict[str, Page] = field(default_factory=dict)  # URL -> page, for every HTML file
    records: list[RecordPage] = field(default_factory=list)
    listings: dict[str, list[str]] = field(default_factory=dict)  # collection -> its listing pages' URLs

    @property
    def base_path(self) -> str:
        """The path of the base URL, "/" or "/sub/": the prefix of every link."""
        return "/" + self.base_url.split("://", 1)[-1].partition("/")[2]

    @property
    def script_name(self) -> dict[str, str]:
        """The WSGI environ under which an app's links carry the base path, as freeze makes them."""
        return {"SCRIPT_NAME": self.base_path.rstrip("/")}

    @property
    def origin(self) -> str:
        """The scheme and host of the base URL: "https://example.org"."""
        parts = urlsplit(self.base_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def collections(self) -> dict[str, Any]:
        return self.content.collections

    def files(self) -> list[str]:
        """Every file of the build, relative to it, but the freeze's marker."""
        from .freeze.build import MARKER

        return sorted(p.relative_to(self.path).as_posix() for p in self.path.rglob("*")
                      if p.is_file() and p.name != MARKER)

    def page(self, url: str) -> Page:
        return self.pages[url]

    def page_of(self, record: Any, endpoint: str | None = None) -> Page:
        """The page of ``record`` (by its collection's first record route, or ``endpoint``'s)."""
        for found in self.records:
            if endpoint is None and not found.file.endswith(".html"):
                continue  # a JSON or XML route of the record's: only when asked by its endpoint
            if found.record is record and endpoint in (None, found.endpoint):
                if found.page is None:
                    raise AssertionError(f"{found.source} has no page: {found.url} ({found.file}) "
                                         "is not in the build")
                return found.page
        raise KeyError(f"no page for {record!r}")

    def listing(self, collection: str) -> list[Page]:
        """The listing pages of ``collection``, first to last."""
        return [self.pages[url] for url in self.listings[collection]]

    def href(self, url: str) -> str:
        """The link to a page as the site's pages write it: its URL under the base path."""
        return self.base_path + url.lstrip("/")

    def file_of(self, link: str, page: Page | None = None) -> str | None:
        """The build's file a link on ``page`` names (it may not exist), or None when it leaves the site."""
        here = self.origin + self.href(page.url if page else "/")
        parts = urlsplit(urljoin(here, link))
        if parts.scheme not in ("http", "https") or f"{parts.scheme}://{parts.netloc}" != self.origin:
            return None
        path = unquote(parts.path)
        if not path.startswith(self.base_path):
            return ""  # on the site's host but outside its path: nothing the build holds
        relative = path[len(self.base_path):]
        return relative + "index.html" if relative.endswith("/") or not relative else relative


def file_for(url: str) -> str:
    """The file freeze writes for a URL below the base path: "/a/" -> "a/index.html"."""
    relative = url.lstrip("/")
    return relative + "index.html" if relative.endswith("/") or not relative else relative


def content_file(collection: str, record: Any) -> str:
    return f"content/{collection}/{record.slug}.yaml"


def freeze_for_tests(site: Site, dest: Path, content: Content | None = None) -> FrozenSite:
    """Freeze ``site`` into ``dest`` (a new folder) and index what was written."""
    from .content.loader import load_content
    from .freeze import freeze_site

    content = content or load_content(site)
    freeze_site(site, dest, jobs=FREEZE_JOBS, clean=True)
    return index_build(site, content, dest)


def index_build(site: Site, content: Content, dest: Path) -> FrozenSite:
    """The pages of a build in ``dest``, each record's page found through the site's routes."""
    frozen = FrozenSite(site, content, Path(dest), content.settings.base_url)
    for path in sorted(frozen.path.rglob("*.html")):
        file = path.relative_to(frozen.path).as_posix()
        url = "/" + file.removesuffix("index.html")
        frozen.pages[url] = Page(url, file, path.read_bytes())
    frozen.records, frozen.listings = planned_pages(site, content)
    for found in frozen.records:
        found.page = frozen.pages.get(found.url)
        if found.page is not None:
            found.page.source = found.source
    return frozen


def planned_pages(site: Site, content: Content) -> tuple[list[RecordPage], dict[str, list[str]]]:
    """Where each record's pages and each collection's listing pages go, from the site's routes
    (``page`` left None): what a build should have."""
    from flask import url_for

    from .app import create_app
    from .routes import PAGE_ARGUMENT, page_count, record_routes

    records, listings = [], {}
    app = create_app(site, content)
    with app.test_request_context("/"):
        for route in record_routes(app):
            for record in content.collections[route.collection].values():
                url = url_for(route.endpoint, **{route.argument: record})
                records.append(RecordPage(route.collection, record, route.endpoint, url, file_for(url),
                                          content_file(route.collection, record), None))
        for name, collection in site.collections.items():
            if collection.listing:
                count = page_count(len(content.collections[name]), collection.per_page)
                listings[name] = [url_for(name, **{PAGE_ARGUMENT: n}) for n in range(1, count + 1)]
    return records, listings


def with_content_files(message: str, site: Site, content: Content) -> str:
    """``message`` (the freeze's) with each record page it names followed by the record's content file:
    "on page /users/ada/ (from content/users/ada.yaml)"."""
    try:
        records, _ = planned_pages(site, content)
    except Exception:  # a site whose routes do not even plan: the message as it is
        return message
    base_path = FrozenSite(site, content, Path(), content.settings.base_url).base_path
    sources = {base_path + found.url.lstrip("/"): found.source for found in records}

    def annotate(match: re.Match) -> str:
        word = match.group()
        source = sources.get(word.rstrip(".,:;"))
        return f"{word} (from {source})" if source and source not in message else word

    return re.sub(r"\S+", annotate, message)


def open_preview(root: Path, folder: Path) -> Client:
    """A test client of the preview of the site in ``root`` (the reload client and live pages included).

    Its accounts, sessions and uploads live in ``folder``; its secret key is a
    test key unless SITE_SECRET_KEY is set, so nothing is written into the site.
    """
    from werkzeug.test import Client

    from .preview.server import PreviewMiddleware, PreviewSite

    with pytest.MonkeyPatch.context() as patch:
        if not os.environ.get("SITE_SECRET_KEY"):
            patch.setenv("SITE_SECRET_KEY", TEST_SECRET_KEY)
        preview = PreviewSite(root)
    if preview.app is not None:
        preview.app.config.update(SITE_ACCOUNTS_FILE=folder / "accounts.yaml",
                                  SITE_SESSIONS_FILE=folder / "sessions.yaml",
                                  SITE_UPLOAD_FOLDER=folder / "uploads")
    return Client(PreviewMiddleware(preview))


def without_preview(body: bytes) -> bytes:
    """A page the preview served, without its ``<!--preview-->`` blocks: what freeze writes."""
    return PREVIEW_BLOCK.sub(b"", body)


# ---------------------------------------------------------------- the checks, as lists of problems


def missing_record_fields(frozen: FrozenSite, hidden: dict[str, list[str]] | None = None) -> list[str]:
    """Each record without its page, and each declared field a record's page does not show."""
    from .content.loader import schema_of

    hidden = hidden or {}
    problems = []
    for found in frozen.records:
        if found.page is None:
            if not found.file.endswith(".html") and (frozen.path / found.file).is_file():
                continue  # a record's file that is not a page (a JSON or XML route): there, nothing to read
            problems.append(f"{found.source} has no page: {found.url} ({found.file}) is not in the build")
            continue
        schema = schema_of(type(found.record), frozen.site)
        for each in schema.fields:
            if each.name in hidden.get(found.collection, ()):
                continue
            value = found.record.__dict__.get(each.name)
            for alternatives in expected_text(each.kind, value):
                if not any(collapse(text) in found.page.searchable for text in alternatives if text.strip()):
                    problems.append(f"{found.page.where} does not show its field {each.name!r}: "
                                    f"{shorten(alternatives[0])!r} is not on the page")
                    break
    return problems


def expected_text(kind: str, value: Any) -> list[list[str]]:
    """What a page showing ``value`` contains: one list of acceptable texts per part of it (list items,
    mapping values). Empty values, booleans and navigation expect nothing."""
    from .content.model import Markdown

    if value is None or isinstance(value, bool) or kind == "nav" or value in ("", [], {}):
        return []
    if isinstance(value, Markdown):
        from bs4 import BeautifulSoup

        text = BeautifulSoup(value.html, "html.parser").get_text(" ")
        return [[text]] if text.strip() else []
    if isinstance(value, dt.date):
        day = value.date() if isinstance(value, dt.datetime) else value
        return [[day.isoformat(), str(day.year)]]  # in a datetime attribute, or in the written date
    if isinstance(value, dict):
        return [group for item in value.values() for group in expected_text("plain", item)]
    if isinstance(value, (list, tuple)):
        return [group for item in value for group in expected_text(kind, item)]
    if kind in ("ref", "refs"):  # the slug, as the referenced record's URL names it
        return [[value if isinstance(value, str) else value.slug]]
    return [[str(value)]]


def shorten(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def broken_links(frozen: FrozenSite) -> list[str]:
    """Each link, asset or form of a page that names a file the build does not have."""
    files = set(frozen.files())
    problems = []
    for page in frozen.pages.values():
        for tag, link in page.links():
            if link.startswith("#"):
                continue
            file = frozen.file_of(link, page)
            if file is None:
                continue
            if file == "":
                problems.append(f"{page.where}: <{tag}> links to {link}, outside the site's base path "
                                f"{frozen.base_path}")
            elif file not in files and f"{file}/index.html" not in files:
                problems.append(f"{page.where}: <{tag}> links to {link}, but the build has no {file}")
    return problems


def sitemap_urls(frozen: FrozenSite) -> list[str]:
    """The URLs in sitemap.xml, through a sitemap index when there is one."""
    from xml.etree import ElementTree

    def locs(file: str) -> list[str]:
        path = frozen.path / file
        if not path.is_file():
            return []
        return [loc.text.strip() for loc in ElementTree.parse(path).getroot().iter(f"{SITEMAP_NS}loc")]

    found = []
    root = frozen.path / "sitemap.xml"
    is_index = root.is_file() and ElementTree.parse(root).getroot().tag == f"{SITEMAP_NS}sitemapindex"
    for loc in locs("sitemap.xml"):
        found.extend(locs(frozen.file_of(loc) or "") if is_index else [loc])
    return found


def pages_missing_from_sitemap(frozen: FrozenSite) -> list[str]:
    """Each page (but the 404 page) missing from the sitemap, and each sitemap URL the build lacks."""
    if not (frozen.path / "sitemap.xml").is_file():
        return ["the build has no sitemap.xml"]
    listed = sitemap_urls(frozen)
    files = set(frozen.files())
    problems = [f"sitemap.xml lists {url}, but the build has no {frozen.file_of(url)}"
                for url in listed if frozen.file_of(url) not in files]
    in_sitemap = {frozen.file_of(url) for url in listed}
    for page in frozen.pages.values():
        if page.file.endswith("index.html") and page.file not in in_sitemap:
            problems.append(f"{page.where} is not in sitemap.xml")
    return problems


def live_endpoint(adapter: Any, path: str, method: str = "GET") -> str | None:
    """The preview-only endpoint ``path`` reaches in the preview app, or None."""
    from werkzeug.exceptions import MethodNotAllowed, NotFound
    from werkzeug.routing import RequestRedirect

    try:
        endpoint, _ = adapter.match(path, method=method)
    except (NotFound, MethodNotAllowed):
        return None
    except RequestRedirect as redirect:  # e.g. a missing trailing slash: follow it
        return live_endpoint(adapter, urlsplit(redirect.new_url).path, method)
    return endpoint if endpoint.startswith("live.") else None


def preview_only_leaks(frozen: FrozenSite, preview: Client) -> list[str]:
    """Each preview-only page, link, form or asset (sitegen/live/) found in the build."""
    app = preview.application.site.app
    if app is None:
        return [f"the preview cannot show the site: {error}" for error in preview.application.site.errors]
    adapter = app.url_map.bind("localhost")
    problems = []
    files = frozen.files()
    for file in files:
        endpoint = live_endpoint(adapter, "/" + file.removesuffix("index.html"))
        if endpoint:
            problems.append(f"{file} is the preview-only page {endpoint}")
    used = set()
    for page in frozen.pages.values():
        if b"<!--preview-->" in page.data:
            problems.append(f"{page.where} holds a <!--preview--> block")
        for tag, link in page.links():
            file = frozen.file_of(link, page)
            if not file:
                continue
            used.add(file)
            method = "POST" if tag in ("form", "button") else "GET"
            endpoint = live_endpoint(adapter, "/" + file.removesuffix("index.html"), method)
            if endpoint:
                problems.append(f"{page.where}: <{tag}> links to the preview-only {link} ({endpoint})")
    # The assets only the preview-only pages use must not be copied into the build.
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("live.") and not rule.arguments and "GET" in rule.methods:
            response = preview.get(rule.rule, environ_overrides=frozen.script_name)
            if response.status_code != 200 or response.mimetype != "text/html":
                continue
            live_page = Page(rule.rule, "", response.data)
            for tag, link in live_page.links():
                file = frozen.file_of(link, live_page)
                if tag in ("link", "script", "img") and file and file not in used and file in files:
                    problems.append(f"{file} is used only by the preview-only page {rule.rule}, "
                                    "yet it is in the build")
    return sorted(set(problems))


def preview_differences(frozen: FrozenSite, preview: Client) -> list[str]:
    """Each file of the build the preview serves otherwise (its ``<!--preview-->`` blocks aside)."""
    problems = []
    for file in frozen.files():
        url = "/" + file.removesuffix("index.html")
        page = frozen.pages.get(url)
        where = page.where if page else f"{url} ({file})"
        response = preview.get(url, environ_overrides=frozen.script_name)
        if response.status_code != 200:
            problems.append(f"{where}: the preview answers {response.status}")
            continue
        served, written = without_preview(response.data), (frozen.path / file).read_bytes()
        if served != written:
            problems.append(f"{where}: the preview serves other bytes than freeze wrote"
                            + first_difference(written, served))
    return problems


def first_difference(written: bytes, served: bytes) -> str:
    """The first differing lines of a frozen file and the preview's answer, for a failure message."""
    try:
        old, new = written.decode().splitlines(), served.decode().splitlines()
    except UnicodeDecodeError:
        return f" ({len(written)} bytes written, {len(served)} served)"
    diff = [line for line in difflib.unified_diff(old, new, "freeze", "preview", n=0, lineterm="")
            if not line.startswith("@@")]
    return ":\n    " + "\n    ".join(shorten(line, 160) for line in diff[:6])


def malformed_pages(frozen: FrozenSite) -> list[str]:
    """Each parse error html5lib finds in a page: what its strict mode refuses, all of them, with lines."""
    import html5lib
    from html5lib.constants import E

    problems = []
    for page in frozen.pages.values():
        parser = html5lib.HTMLParser(strict=False)
        parser.parse(page.data)
        for (line, column), code, values in parser.errors:
            message = E.get(code, code) % values if values else E.get(code, code)
            problems.append(f"{page.where}:{line}:{column}: {message}")
    return problems


def freeze_differences(frozen: FrozenSite, dest: Path) -> list[str]:
    """Each file that a second freeze of the site into ``dest`` writes otherwise, or not at all."""
    from .freeze import freeze_site

    freeze_site(frozen.site, dest, jobs=FREEZE_JOBS, clean=True)
    first, second = snapshot(frozen.path), snapshot(dest)
    problems = []
    for file in sorted(first.keys() | second.keys()):
        if first.get(file) != second.get(file):
            page = frozen.pages.get("/" + file.removesuffix("index.html"))
            where = page.where if page else file
            if file not in second or file not in first:
                problems.append(f"{where}: written by only one of two freezes")
            else:
                problems.append(f"{where}: two freezes wrote different bytes"
                                + first_difference(first[file], second[file]))
    return problems


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def expect_no_problems(problems: list[str], what: str) -> None:
    """Fail with every problem listed (up to MAX_SHOWN), one a line, without a traceback."""
    if problems:
        shown = problems[:MAX_SHOWN]
        more = f"\n... and {len(problems) - MAX_SHOWN} more" if len(problems) > MAX_SHOWN else ""
        pytest.fail(f"{len(problems)} {what}:\n" + "\n".join(shown) + more, pytrace=False)


# ---------------------------------------------------------------- the checks, as tests a site turns on


def test_every_record_has_its_page_showing_its_fields(frozen_site, sitegen_hidden_fields):
    """Every record has a page for each of its collection's record routes, showing each declared field
    (text, each list item, each mapping value, Markdown as text, a date as YYYY-MM-DD or its year)."""
    expect_no_problems(missing_record_fields(frozen_site, sitegen_hidden_fields), "missing pages or fields")


def test_every_internal_link_and_asset_resolves(frozen_site):
    """Every href, src and form action on the site's own host names a file of the build."""
    expect_no_problems(broken_links(frozen_site), "broken links")


def test_every_page_is_in_the_sitemap(frozen_site):
    expect_no_problems(pages_missing_from_sitemap(frozen_site), "sitemap problems")


def test_no_preview_only_url_form_or_file_in_the_build(frozen_site, preview_client):
    expect_no_problems(preview_only_leaks(frozen_site, preview_client), "preview-only things in the build")


def test_preview_serves_what_freeze_writes(frozen_site, preview_client):
    expect_no_problems(preview_differences(frozen_site, preview_client), "files differ from the preview")


def test_every_page_is_well_formed_html(frozen_site):
    expect_no_problems(malformed_pages(frozen_site), "HTML parse errors")


def test_a_second_freeze_is_byte_identical(frozen_site, tmp_path):
    expect_no_problems(freeze_differences(frozen_site, tmp_path / "again"), "files differ between two freezes")


# ---------------------------------------------------------------- the plugin: options and fixtures


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("sitegen_root", "the folder of the site's site.py, relative to the ini file "
                  "(default: the rootdir, when it holds site.py)", default="")
    parser.addini("sitegen_hidden_fields", "record fields a site does not show on their pages, "
                  "as COLLECTION.FIELD (e.g. users.bio)", type="linelist", default=[])


@pytest.fixture(scope="session")
def sitegen_root(pytestconfig: pytest.Config) -> Path:
    """The folder holding the site's site.py. Override it to test another site."""
    configured = pytestconfig.getini("sitegen_root")
    if configured:
        base = pytestconfig.inipath.parent if pytestconfig.inipath else pytestconfig.rootpath
        return (base / configured).resolve()
    if not (pytestconfig.rootpath / "site.py").is_file():
        pytest.fail(f"sitegen: no site.py in {pytestconfig.rootpath}; set the ini option sitegen_root "
                    "or override the sitegen_root fixture", pytrace=False)
    return pytestconfig.rootpath


@pytest.fixture(scope="session")
def sitegen_site(sitegen_root: Path) -> Site:
    """The Site that site.py declares."""
    from .site import load_site

    return load_site(sitegen_root)


@pytest.fixture(scope="session")
def site_content(sitegen_site: Site) -> Content:
    """The site's settings and records: ``site_content.settings``, ``site_content.collections["users"]``
    or ``site_content.users`` (slug -> record)."""
    from .content.loader import load_content
    from .errors import ContentErrors

    try:
        return load_content(sitegen_site)
    except ContentErrors as exc:
        problem = str(exc)
    pytest.fail(f"the site's content does not load:\n{problem}", pytrace=False)


@pytest.fixture(scope="session")
def frozen_site(sitegen_site: Site, site_content: Content, tmp_path_factory: pytest.TempPathFactory) -> FrozenSite:
    """The site frozen once per session into a temporary folder, its pages parsed on first use."""
    from .errors import SiteError

    try:
        return freeze_for_tests(sitegen_site, tmp_path_factory.mktemp("sitegen") / "build", site_content)
    except SiteError as exc:
        problem = with_content_files(str(exc), sitegen_site, site_content)
    pytest.fail(f"the site does not freeze:\n{problem}", pytrace=False)


@pytest.fixture(scope="session")
def site_pages(frozen_site: FrozenSite) -> dict[str, Page]:
    """The frozen site's HTML pages by URL ("/users/ada-lovelace/"); ``page.soup`` parses one."""
    return frozen_site.pages


@pytest.fixture(scope="session")
def site_records(frozen_site: FrozenSite) -> list[RecordPage]:
    """Every record with its page, for each of its collection's record routes: ``.collection``,
    ``.record``, ``.page`` (None when missing), ``.url``, ``.file``, ``.source`` (its content file)."""
    return frozen_site.records


@pytest.fixture(scope="session")
def preview_client(sitegen_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Client:
    """A werkzeug test client of the site's preview: pages carry the preview's blocks."""
    return open_preview(sitegen_root, tmp_path_factory.mktemp("preview"))


@pytest.fixture(scope="session")
def sitegen_hidden_fields(pytestconfig: pytest.Config) -> dict[str, list[str]]:
    """Fields a record's page need not show, by collection: {"users": ["bio"]}. From the ini option
    sitegen_hidden_fields, or override this fixture."""
    hidden: dict[str, list[str]] = {}
    for entry in pytestconfig.getini("sitegen_hidden_fields"):
        collection, _, name = entry.partition(".")
        hidden.setdefault(collection, []).append(name)
    return hidden
