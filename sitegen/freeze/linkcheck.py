"""Every internal link and asset of every frozen page must resolve inside the build.

Each HTML page's ``href`` and ``src`` values are read as it is written (a
regular expression over the page Jinja just rendered: parsing each page as
HTML would cost more than rendering it) and kept, as files of the build, in
the freeze's state; after every freeze all pages' links are checked against
the files the build then holds, so deleting a record breaks the pages that
still link to it even when they were not rendered again. A broken link is
one line naming the page and the link, and the content file and line it
was written in when it came from content (a Markdown field, say).
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

from ..content.model import base_path_of
from .dependencies import record_key
from .pages import Pages

# An href or src attribute after a space, as Jinja templates write them. A pattern that starts
# with a literal runs 2-3 times as fast as one that starts with \s (measured, 2 KB pages).
LINK = re.compile(rb""" (?:href|src)=(?:"([^"]*)"|'([^']*)')""")
NOT_FETCHED = ("mailto:", "tel:", "javascript:", "data:", "#")
MAX_SHOWN = 20
REMEMBERED_LINKS = 1024  # resolved links kept (see page_links); every record's page is linked to


def page_links(body: bytes, page_url: str, base_url: str) -> tuple[str, ...]:
    """The files of the build that ``body`` (an HTML page at ``page_url``) links to.

    A link outside the base URL's path but on its host (``/about/`` for a
    site published under ``/sub/``) is kept as written, marked with a
    leading ``/``: it leads out of the site, so it is broken. Links to
    other hosts are not checked.
    """
    resolved = _RESOLVED.setdefault(base_url, {})
    found = set()
    for double, single in LINK.findall(body):
        raw = double or single
        target = resolved.get(raw, _UNKNOWN)
        if target is _UNKNOWN:
            target = _resolve(raw, page_url, base_url)
            if raw.startswith(b"/") or raw.startswith(b"http"):  # the same on every page
                if len(resolved) >= REMEMBERED_LINKS:  # links to records too, each seen once or twice
                    resolved.clear()
                resolved[raw] = target
        if target is not None:
            found.add(target)
    return tuple(sorted(found))


# base URL -> link as written -> what it leads to: the nav, the stylesheet and the like are on every page.
_RESOLVED: dict[str, dict[bytes, str | None]] = {}
_UNKNOWN = object()


def _resolve(raw: bytes, page_url: str, base_url: str) -> str | None:
    """The file of the build a link leads to (or ``/path`` outside the site), None when not checked."""
    netloc, origin, base_path = _base(base_url)
    link = raw.decode("utf-8", "replace").strip()
    if not link or link.startswith(NOT_FETCHED):
        return None
    if "&" in link:
        link = html.unescape(link)
    if link.startswith(origin + "/"):  # an absolute link to the site itself, such as a canonical one
        link = link[len(origin):]
    if link.startswith("/") and not link.startswith("//"):
        path = link.partition("#")[0].partition("?")[0]
        if "/." in path:
            path = urlsplit(urljoin(page_url, path)).path
    else:
        target = urlsplit(urljoin(page_url, link))
        if target.scheme not in ("http", "https") or target.netloc != netloc:
            return None
        path = target.path
    if "%" in path:
        path = unquote(path)
    if not path.startswith(base_path):
        return path  # outside the site
    relative = path[len(base_path):]
    return relative + "index.html" if not relative or relative.endswith("/") else relative


@functools.cache
def _base(base_url: str) -> tuple[str, str, str]:
    """The host, the origin and the path of the base URL."""
    base = urlsplit(base_url)
    return base.netloc, f"{base.scheme}://{base.netloc}", base_path_of(base_url)


def broken_links(pages: Pages, root: Path, base_path: str, only: Iterable[str] | None = None) -> list[str]:
    """One line per broken link of the build ``pages`` describes, on every page or ``only`` on those;
    a page depends on its owner's file too (see pages.Page).

    The pages of a route mostly share one tuple of links: each tuple is
    checked once, and only the pages with a broken link are sorted.
    """
    whole_files = {page[0] for page in pages.whole.values()}
    broken: dict[int, bool] = {}  # id of a tuple of links -> whether one of them is broken
    found = []
    for url, page in (pages.items() if only is None else ((url, pages[url]) for url in only)):
        links = page[3]
        if url in pages.whole:  # unpacked for this page alone: no other page has the tuple, nor may its id
            bad = not all(pages.has_file(target, whole_files) for target in links)
        else:
            bad = broken.get(id(links))
            if bad is None:
                bad = broken[id(links)] = not all(pages.has_file(target, whole_files) for target in links)
        if bad:
            found.append(url)
    problems = []
    for url in sorted(found):
        file, owner, dependencies, links = pages[url]
        for target in links:
            if pages.has_file(target, whole_files):
                continue
            shown = target if target.startswith("/") else base_path + target.removesuffix("index.html")
            problem = ("leads out of the site's base path " + base_path if target.startswith("/")
                       else "leads to no page or file of the site")
            written = ["/" + shown[len(base_path):], shown] if shown.startswith(base_path) else [shown]
            sources = sorted((record_key(*owner), *dependencies)) if owner else dependencies
            problems.append(_located(f"link {shown} on page {url} {problem}", written, sources, root))
            if len(problems) == MAX_SHOWN:
                return problems + ["(and maybe more: fix these and freeze again)"]
    return problems


def _located(message: str, written: list[str], dependencies: Iterable[str], root: Path) -> str:
    """The message, led by the content file and line (or else the template) where the link is written."""
    for kind in ("content/", "templates/"):
        for source in dependencies:
            if source.startswith(kind) and source.endswith((".yaml", ".html", ".xml", ".txt")):
                line = _line_of(root / source, written)
                if line:
                    return f"{source}:{line}: {message}"
    return message


def _line_of(path: Path, written: list[str]) -> int | None:
    try:
        text = path.read_text("utf-8", "replace")
    except OSError:
        return None
    for candidate in written:
        at = text.find(candidate) if len(candidate) > 1 else -1
        if at >= 0:
            return text.count("\n", 0, at) + 1
    return None
