"""Reading one YAML content file safely, keeping its node tree to locate errors.

PyYAML's sharp edges are refused here: aliases and anchors (they can expand
exponentially), duplicate keys (PyYAML silently keeps the last) and merge
keys (``<<:`` overrides fields just as silently), keys that are lists or
mappings, values that fail their tag (``2024-02-30``, ``!!int abc``), files
too large to be content, and links to files outside the project. Every
problem is one ContentError naming ``file:line:col``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

from ..errors import ContentError
from ..links import OUTSIDE_LINK, leads_outside

Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
MAX_FILE_BYTES = 256 * 1024
MERGE_TAG = "tag:yaml.org,2002:merge"
# What a value of each tag is called in an error.
TAG_NAMES = {"int": "an integer", "float": "a number", "bool": "a boolean", "timestamp": "a date",
             "null": "null", "binary": "base64 data"}


class _ValueError(yaml.constructor.ConstructorError):
    """A scalar that fails its tag (PyYAML raises a bare ValueError, KeyError... without a place)."""


class _CheckedLoader(Loader):  # type: ignore[misc, valid-type]
    """PyYAML's safe loader, whose failures to build a value name the value's place."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except yaml.YAMLError:
            raise
        except RecursionError:
            raise _ValueError(None, None, "nested too deeply", node.start_mark) from None
        except Exception as exc:  # ValueError, KeyError, IndexError, AttributeError from the constructors
            raise _ValueError(None, None, _bad_value(node, exc), node.start_mark) from None


def _bad_value(node: yaml.Node, exc: Exception) -> str:
    kind = TAG_NAMES.get(node.tag.rpartition(":")[2], f"a {node.tag.rpartition(':')[2]}")
    value = node.value if isinstance(node.value, str) else ""
    shown = repr(value if len(value) <= 40 else value[:40] + "...")
    if kind == "a date":
        return f"{shown} is not a valid date" + (f" ({exc})" if isinstance(exc, ValueError) else "")
    if "digits" in str(exc):
        return f"a number of {len(value):,} digits is too long"
    return f"{shown} is not {kind}"


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


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
    """PyYAML keeps the last of duplicate keys silently; a typo'd copy would win.

    Merge keys (``<<: {...}``) override fields as silently, and a key that
    is a list or a mapping names no field: both are refused too.
    """
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            if key_node.tag == MERGE_TAG:
                raise located_error(shown, key_node, "merge keys (<<) are not allowed in content")
            if not isinstance(key_node, yaml.ScalarNode):
                what = "a list" if isinstance(key_node, yaml.SequenceNode) else "a mapping"
                raise located_error(shown, key_node, f"a key must be plain text, not {what}")
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
    if data is None and leads_outside(path, root):
        raise ContentError(shown, 1, 1, OUTSIDE_LINK)
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
        loader = _CheckedLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                raise ContentError(shown, 1, 1, "file is empty; expected a mapping of fields")
            _refuse_duplicate_keys(node, shown)
            value = loader.construct_document(node)
        finally:
            loader.dispose()
    except _ValueError as exc:
        raise located_error(shown, exc.problem_mark, _one_line(exc.problem)) from None
    except yaml.MarkedYAMLError as exc:
        problem = _one_line(" ".join(filter(None, [exc.context, exc.problem]))) or "invalid YAML"
        raise located_error(shown, exc.problem_mark or exc.context_mark, f"invalid YAML: {problem}") from None
    except yaml.reader.ReaderError as exc:  # a control character: its place is an offset in the text
        before = text[: exc.position]
        line, column = before.count("\n") + 1, exc.position - before.rfind("\n")
        character = exc.character if isinstance(exc.character, int) else ord(exc.character)
        raise ContentError(shown, line, column, f"control character U+{character:04X} is not allowed "
                                                "(use an escape such as \\u0007 in a double-quoted string)") from None
    except yaml.YAMLError as exc:
        raise ContentError(shown, 1, 1, f"invalid YAML: {_one_line(str(exc))}") from None
    except RecursionError:
        raise ContentError(shown, 1, 1, "invalid YAML: nested too deeply") from None
    return value, node, shown
