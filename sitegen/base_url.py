"""The one check of a base URL, wherever it is given (``--base-url``, ``base_url`` in site.yaml)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

PLAIN_PATH = re.compile(r"[A-Za-z0-9/._~-]*")  # what no URL builder quotes or unquotes


def normalized_base_url(url: str) -> str:
    """``url`` ending in ``/``; ValueError with a one-line reason if no site can live there.

    Frozen-Flask and Werkzeug refuse a query, a fragment or an escaped path
    only once the first page is built, with a traceback; this says why first.
    """
    if not url.startswith(("http://", "https://")) or any(char.isspace() for char in url):
        raise ValueError(f"expected an http(s) URL such as https://example.org/, got {url!r}")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError when out of range)
    except ValueError as exc:
        raise ValueError(f"not a valid URL ({exc}): {url!r}") from None
    if not parts.hostname:
        raise ValueError(f"expected a host name after the scheme, got {url!r}")
    if "?" in url or "#" in url:  # an empty query or fragment too, which urlsplit drops
        raise ValueError(f"a base URL takes no query or fragment, got {url!r}")
    if not PLAIN_PATH.fullmatch(parts.path):
        raise ValueError(f"a base URL's path may hold only letters, digits, '/', '-', '.', '_' and '~', got {url!r}")
    return url if url.endswith("/") else url + "/"
