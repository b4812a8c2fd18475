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

import html
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

LINK = re.compile(rb"""\s(?:href|src)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
NOT_FETCHED = ("mailto:", "tel:", "javascript:", "data:", "#")
MAX_SHOWN = 20


def page_links(body: bytes, page_url: str, base_url: str) -> tuple[str, ...]:
    """The files of the build that ``body`` (an HTML page at ``page_url``) links to.

    A link outside the base URL's path but on its host (``/about/`` for a
    site published under ``/sub/``) is kept as written, marked with a
    leading ``/``: it leads out of the site, so it is broken. Links to
    other hosts are not checked.
    """
    base = urlsplit(base_url)
    base_path = base.path if base.path.endswith("/") else base.path + "/"
    found = set()
    for double, single in LINK.findall(body):
        link = (double or single).decode("utf-8", "replace").strip()
        if not link or link.startswith(NOT_FETCHED):
            continue
        if "&" in link:
            link = html.unescape(link)
        target = urlsplit(urljoin(page_url, link))
        if target.scheme not in ("", base.scheme, "http", "https") or (target.netloc and target.netloc != base.netloc):
            continue
        path = unquote(target.path)
        if not path.startswith(base_path):
            found.add(path)  # outside the site
            continue
        relative = path[len(base_path):]
        found.add(relative + "index.html" if not relative or relative.endswith("/") else relative)
    return tuple(sorted(found))


def broken_links(pages: Mapping[str, tuple], root: Path, base_path: str) -> list[str]:
    """One line per broken link of the build ``pages`` describes (url -> (file, owner, dependencies, links))."""
    files = {page[0] for page in pages.values()}
    problems = []
    for url, (file, _, dependencies, links) in sorted(pages.items()):
        for target in links:
            if target in files:
                continue
            shown = target if target.startswith("/") else base_path + target.removesuffix("index.html")
            problem = ("leads out of the site's base path " + base_path if target.startswith("/")
                       else "leads to no page or file of the site")
            written = ["/" + shown[len(base_path):], shown] if shown.startswith(base_path) else [shown]
            problems.append(_located(f"link {shown} on page {url} {problem}", written, dependencies, root))
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


def base_path_of(base_url: str) -> str:
    path = urlsplit(base_url).path or "/"
    return path if path.endswith("/") else path + "/"
