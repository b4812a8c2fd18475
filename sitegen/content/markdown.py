"""Markdown fields rendered to HTML with markdown-it-py (CommonMark), once per record.

Raw HTML in the text is escaped unless the site allows it. A root-relative
link or image (``/about/``, ``/static/images/x.png``) gets the base URL's
path, so content follows the site when it is published under a sub-path.
"""

from __future__ import annotations

import functools
import re
from typing import Any

# One line of plain text: it starts with a letter and holds none of the characters that
# start CommonMark syntax, so markdown-it would make it one paragraph, escaping only the
# quotes. Most short bios are such a line; skipping the parser for them takes about 40 %
# off reading a record (docs/speed.md). tests/engine/test_markdown.py compares the two.
PLAIN_LINE = re.compile(r"[^\W\d_][^\n\r\t\0\\`*_\[\]<>&!#~|]*(?<=\S)")


@functools.cache
def _parser(allow_html: bool) -> Any:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": allow_html})


def render_markdown(source: str, base_path: str, *, allow_html: bool) -> str:
    if not source:
        return ""
    if PLAIN_LINE.fullmatch(source):
        return "<p>" + source.replace('"', "&quot;") + "</p>\n"
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
