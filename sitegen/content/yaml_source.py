"""Reading one YAML content file safely, keeping its node tree to locate errors.

PyYAML's sharp edges are refused here: aliases and anchors (they can expand
exponentially), duplicate keys (PyYAML silently keeps the last), files too
large to be content. Every problem is a ContentError naming ``file:line:col``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from ..errors import ContentError

Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
MAX_FILE_BYTES = 256 * 1024


def display_path(path: Path, root: Path) -> str:
    """A path as errors show it: relative to the project when inside it (on every file parsed, so cheap)."""
    text, prefix = str(path), os.path.join(root, "")
    return text[len(prefix):].replace(os.sep, "/") if text.startswith(prefix) else text


def located_error(path: str, node_or_mark: Any, message: str) -> ContentError:
    mark = getattr(node_or_mark, "start_mark", node_or_mark)
    if mark is None:
        return ContentError(path, 1, 1, message)
    return ContentError(path, mark.line + 1, mark.column + 1, message)


def _refuse_anchors(text: str, shown: str) -> None:
    """Anchors and aliases can expand exponentially; content never needs them."""
    for event in yaml.parse(text, Loader=Loader):
        if isinstance(event, yaml.AliasEvent):
            raise located_error(shown, event.start_mark, f"aliases (*{event.anchor}) are not allowed in content")
        if getattr(event, "anchor", None):
            raise located_error(shown, event.start_mark, f"anchors (&{event.anchor}) are not allowed in content")


def _refuse_duplicate_keys(node: yaml.Node, shown: str) -> None:
    """PyYAML keeps the last of duplicate keys silently; a typo'd copy would win."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            if isinstance(key_node, yaml.ScalarNode) and key in seen:
                first = seen[key].start_mark.line + 1
                raise located_error(shown, key_node, f"duplicate key {key!r} (first set on line {first})")
            seen[key] = key_node
            _refuse_duplicate_keys(value_node, shown)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _refuse_duplicate_keys(item, shown)


def read_yaml(path: Path, root: Path, data: bytes | None = None) -> tuple[Any, yaml.Node, str]:
    """Parse one YAML file: its value, its node tree (for locating errors), its path as errors show it.

    ``data`` is the file's content when the caller has already read it.
    Raises ContentError on the first problem.
    """
    shown = display_path(path, root)
    try:
        data = path.read_bytes() if data is None else data
    except OSError as exc:
        raise ContentError(shown, 1, 1, f"cannot read: {exc.strerror}") from None
    if len(data) > MAX_FILE_BYTES:
        raise ContentError(shown, 1, 1, f"file is {len(data):,} bytes; the limit is {MAX_FILE_BYTES:,}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ContentError(shown, line, 1, "not valid UTF-8 text") from None
    try:
        if "&" in text or "*" in text:
            _refuse_anchors(text, shown)
        loader = Loader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                raise ContentError(shown, 1, 1, "file is empty; expected a mapping of fields")
            _refuse_duplicate_keys(node, shown)
            value = loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        problem = " ".join(filter(None, [exc.context, exc.problem])) or "invalid YAML"
        raise located_error(shown, exc.problem_mark or exc.context_mark, f"invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise ContentError(shown, 1, 1, f"invalid YAML: {exc}") from None
    return value, node, shown
