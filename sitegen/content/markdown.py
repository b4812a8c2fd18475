"""Markdown fields rendered to HTML with markdown-it-py (CommonMark), once per record.

Raw HTML in the text is escaped unless the site allows it. A root-relative
link or image (``/about/``, ``/static/images/x.png``) gets the base URL's
path, so content follows the site when it is published under a sub-path.
"""

from __future__ import annotations

import functools
from typing import Any


@functools.cache
def _parser(allow_html: bool) -> Any:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": allow_html})


def render_markdown(source: str, base_path: str, *, allow_html: bool) -> str:
    if not source:
        return ""
    parser = _parser(allow_html)
    tokens = parser.parse(source)
    if base_path != "/":
        for token in tokens:
            for child in token.children or ():
                for attribute in ("href", "src"):
                    value = child.attrGet(attribute)
                    if isinstance(value, str) and value.startswith("/") and not value.startswith("//"):
                        child.attrSet(attribute, base_path.rstrip("/") + value)
    return parser.renderer.render(tokens, parser.options, {})
