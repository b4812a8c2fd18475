"""The content types a site declares, and how one YAML mapping becomes one checked record.

A site subclasses ``Record`` with annotated fields (``title: str``,
``starts: date``, ``summary: Markdown = Markdown()``, ``venue: Venue`` for a
reference to a record of another collection). Declaring one is plain Python; the first file parsed
builds a strict pydantic v2 model from the annotations (unknown fields
refused, ``no`` is not text, ``12:30`` is not a time) and every error's
location is walked down the YAML node tree to ``file:line:col``.

Records are plain objects: templates read their attributes at full speed,
and a freeze keeps them as tuples of plain values (``Schema.encode``).
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import typing
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import yaml


class Record:
    """Base of a site's content types. Every record also has ``slug``: its file name, the part of its URL."""

    slug: str

    def __init__(self, slug: str, **fields: Any):
        self.__dict__["slug"] = slug
        self.__dict__.update(fields)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.slug!r}>"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.__dict__ == self.__dict__

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.slug))


def is_record_file(name: str) -> bool:
    """Whether a file of a collection's folder holds a record: a .yaml (or .yml) file, not hidden.

    The one rule for the loader, the preview and the freeze's scans, so that
    a file one of them reads is a file the others watch.
    """
    return name.endswith((".yaml", ".yml")) and not name.startswith(".")


class Records(dict):
    """One collection's records, slug -> record, in file-name order."""

    def first(self, count: int) -> list[Any]:
        """The first ``count`` records, e.g. a few on the home page."""
        return self.slice(0, count)

    def slice(self, start: int, stop: int) -> list[Any]:
        """The records from position ``start`` up to ``stop``, e.g. one listing page."""
        return [self[slug] for slug in itertools.islice(self, start, stop)]


class Settings(Record):
    """content/site.yaml. A site adds fields by subclassing it and declaring it with ``@site.settings``."""

    title: str
    base_url: str
    nav: list[NavItem] = []


class NavItem(NamedTuple):
    label: str
    page: str  # a page's endpoint, or a collection with a listing


class Markdown:
    """Text written in Markdown (CommonMark), shown as HTML: ``{{ event.summary }}``.

    Rendered once when the record is read, never per page view. Raw HTML in
    the text is escaped unless the site allows it (``Site(..., raw_html=True)``);
    root-relative links (``/about/``) follow the base URL.
    """

    __slots__ = ("source", "html")

    def __init__(self, source: str = "", html: str | None = None):
        self.source = source
        if html is None and source:
            from .markdown import render_markdown

            html = render_markdown(source, "/", allow_html=False)
        self.html = html or ""

    def __html__(self) -> str:
        return self.html

    def __str__(self) -> str:
        return self.source

    def __bool__(self) -> bool:
        return bool(self.source)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Markdown) and (other.source, other.html) == (self.source, self.html)

    def __hash__(self) -> int:
        return hash(self.source)

    def __repr__(self) -> str:
        return f"Markdown({self.source!r})"


class StaticFile(str):
    """A path under static/ (``images/poster.jpg``), checked to exist: ``url_for('static', filename=event.poster)``."""

    __slots__ = ()


def plain_fields(record: Record) -> dict[str, Any]:
    """A record as JSON-ready data: its slug and fields; dates as YYYY-MM-DD, Markdown as its text,
    references as slugs."""
    return {key: _plain(value) for key, value in record.__dict__.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Markdown):
        return value.source
    if isinstance(value, NavItem):
        return {"label": value.label, "page": value.page}
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


class Invalid(Exception):
    """A value that does not fit its field, at its place in the record: ``loc`` as pydantic gives it."""

    def __init__(self, loc: tuple, message: str, *, at_key: bool = False):
        super().__init__(message)
        self.loc, self.message, self.at_key = loc, message, at_key


class Field(NamedTuple):
    name: str
    kind: str  # "plain", "date", "markdown", "static", "ref", "refs", "nav"
    target: type | None = None  # the referenced record class, for "ref" and "refs"


class ParseContext(NamedTuple):
    """What checking a field needs besides its value."""

    root: Path
    base_path: str = "/"  # the path of the base URL: root-relative links in Markdown get it
    raw_html: bool = False  # whether Markdown may carry raw HTML


def base_path_of(base_url: str) -> str:
    """The path of a base URL, ending in ``/``: what every link of the site starts with."""
    try:
        path = urlsplit(base_url).path or "/"
    except (ValueError, TypeError, AttributeError):  # not a URL: the settings' check says so, at its line
        return "/"
    return path if path.endswith("/") else path + "/"


class Schema:
    """One record class made checkable: its fields, its pydantic validator, its plain-tuple encoding."""

    def __init__(self, model: type[Record]):
        self.model = model
        hints = typing.get_type_hints(model, include_extras=True)
        hints.pop("slug", None)
        self.fields = [Field(name, *_field_kind(annotation)) for name, annotation in hints.items()]
        self.names = [f.name for f in self.fields]
        self._positions = {name: index for index, name in enumerate(self.names)}
        self.defaults = {name: getattr(model, name) for name in self.names if hasattr(model, name)}
        self._hints = hints
        self._validator: Any = None
        self._converters = [(index, f) for index, f in enumerate(self.fields) if f.kind != "plain"]
        self.references = [f for f in self.fields if f.kind in ("ref", "refs")]
        fast = {f.name: _exact_value_check(hints[f.name], f.kind) for f in self.fields}
        self._exact = fast if all(fast.values()) else None

    @property
    def validator(self) -> Any:
        """The pydantic model, built on first use (building it costs milliseconds per class)."""
        if self._validator is None:
            from pydantic import ConfigDict, create_model

            config = ConfigDict(strict=True, extra="forbid", str_strip_whitespace=True, str_min_length=1)
            definitions = {}
            for f in self.fields:
                annotation = _validated_annotation(f, self._hints[f.name])
                default = self.defaults.get(f.name, ...)
                definitions[f.name] = (annotation, _copyable(default))
            self._validator = create_model(f"{self.model.__name__}Fields", __config__=config, **definitions)
        return self._validator

    def check(self, value: Any, context: ParseContext) -> dict[str, Any]:
        """The fields of one record from its YAML value; raises Invalid with the first problem's place."""
        if not isinstance(value, dict):
            raise Invalid((), f"expected a mapping of fields, got {describe_value(value)}")
        fields = self._exact_fields(value) if self._exact else None
        if fields is None:
            from pydantic import ValidationError

            try:
                checked = self.validator.model_validate(value)
            except ValidationError as exc:
                raise _invalid(exc.errors()[0], self.names) from None
            fields = {name: getattr(checked, name) for name in self.names}
        for f in self.fields:
            if f.kind != "plain":
                fields[f.name] = _convert(f, fields[f.name], context)
        return fields

    def _exact_fields(self, value: dict) -> dict[str, Any] | None:
        """The fields as pydantic would return them, when every value is already exactly of its type.

        Most records are: then neither pydantic nor its model is needed, which
        spares an edit's freeze importing pydantic and building the model
        (0.54 s against 0.67 s for a one-record edit at 10,000 records,
        docs/speed.md). Anything else (a value to convert, strip or refuse,
        a field unknown or missing) returns None, and pydantic decides and
        words the error.
        """
        fields = {}
        for name, exact in self._exact.items():
            if name in value:
                item = value[name]
                if not exact(item):
                    return None
                fields[name] = item
            elif name in self.defaults:
                fields[name] = copy.copy(_copyable(self.defaults[name]))
            else:
                return None
        return fields if all(key in self._exact for key in value) else None  # an unknown field: pydantic names it

    def build(self, slug: str, fields: dict[str, Any]) -> Record:
        record = self.model.__new__(self.model)
        record.__dict__["slug"] = slug
        record.__dict__.update(fields)
        return record

    # ------------------------------------------------------------ as plain tuples (the freeze's state)

    def values(self, record: Record) -> list[Any]:
        """A record's fields in declaration order, as it holds them (a reference as its slug)."""
        return [record.__dict__[name] for name in self.names]

    def encode(self, record: Record) -> tuple:
        """A record as a tuple of marshal-able values, fields in declaration order."""
        values = self.values(record)
        for index, f in self._converters:
            values[index] = _ENCODE[f.kind](values[index])
        return tuple(values)

    def decode(self, slug: str, values: tuple) -> Record:
        fields = dict(zip(self.names, values))
        for _, f in self._converters:
            fields[f.name] = _DECODE[f.kind](fields[f.name])
        return self.build(slug, fields)

    def reference_slugs(self, values: typing.Sequence[Any]) -> list[tuple[Field, int | None, str]]:
        """Each reference among a record's ``values`` (Schema.values, or Schema.encode: both keep a
        reference as its slug): (field, position in a list or None, slug)."""
        found = []
        for f in self.references:
            value = values[self._positions[f.name]]
            if f.kind == "ref":
                if value is not None:
                    found.append((f, None, value))
            else:
                found.extend((f, index, slug) for index, slug in enumerate(value))
        return found


def _field_kind(annotation: Any) -> tuple[str, type | None]:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
        inner = [arg for arg in args if arg is not type(None)]
        if len(inner) == 1:
            return _field_kind(inner[0])
    if annotation is dt.date:
        return "date", None
    if annotation is Markdown:
        return "markdown", None
    if annotation is StaticFile:
        return "static", None
    if isinstance(annotation, type) and issubclass(annotation, Record):
        return "ref", annotation
    if origin is list and args and isinstance(args[0], type) and issubclass(args[0], Record):
        return "refs", args[0]
    if origin is list and args and args[0] is NavItem:
        return "nav", None
    return "plain", None


def _exact_text(value: Any) -> bool:
    """Text pydantic returns unchanged: a str, not empty, without surrounding white space."""
    return type(value) is str and value != "" and not value[0].isspace() and not value[-1].isspace()


_EXACT: dict[Any, Callable[[Any], bool]] = {
    str: _exact_text, int: lambda value: type(value) is int, float: lambda value: type(value) is float,
    bool: lambda value: type(value) is bool, dt.date: lambda value: type(value) is dt.date,
}


def _exact_mapping(each: Callable[[Any], bool]) -> Callable[[Any], bool]:
    """A test for a dict of text keys whose values pass ``each``."""
    return lambda value: type(value) is dict and all(map(_exact_text, value)) and all(map(each, value.values()))


_exact_text_mapping = _exact_mapping(_exact_text)


def _exact_value_check(annotation: Any, kind: str) -> Callable[[Any], bool] | None:
    """A test for values pydantic (strict, stripped, non-empty text) would return unchanged, or None."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if type(None) in args:
        inner = _exact_value_check(next(arg for arg in args if arg is not type(None)), kind)
        return inner and (lambda value: value is None or inner(value))
    if kind in ("markdown", "static", "ref"):
        return _exact_text
    if kind == "refs" or (origin is list and args and args[0] in _EXACT):
        each = _exact_text if kind == "refs" else _EXACT[args[0]]
        return lambda value: type(value) is list and all(map(each, value))
    if origin is dict and args and args[0] is str and args[1] in _EXACT:
        return _exact_mapping(_EXACT[args[1]])
    if kind == "nav":  # checked by pydantic as a list of text mappings; _convert then names any field astray
        return lambda value: type(value) is list and all(map(_exact_text_mapping, value))
    return _EXACT.get(annotation) if kind in ("plain", "date") else None


def _validated_annotation(f: Field, annotation: Any) -> Any:
    """The type pydantic checks: text where the engine converts the value itself."""
    optional = type(None) in typing.get_args(annotation)
    base = {"markdown": str, "static": str, "ref": str, "refs": list[str], "nav": list[dict[str, str]]}.get(f.kind)
    if base is None:
        return annotation
    return base | None if optional else base


def _copyable(default: Any) -> Any:
    if isinstance(default, Markdown):
        return default.source
    return default


def _convert(f: Field, value: Any, context: ParseContext) -> Any:
    if value is None:
        return None
    if f.kind == "markdown":
        from .markdown import render_markdown

        source = value.source if isinstance(value, Markdown) else value
        return Markdown(source, render_markdown(source, context.base_path, allow_html=context.raw_html))
    if f.kind == "static":
        path = context.root / "static" / value
        if value.startswith("/") or not _inside(path, context.root / "static"):
            raise Invalid((f.name,), f"{value!r} is not a path under static/: write it as images/photo.jpg, "
                                     "without a leading / or ..")
        if not path.is_file():
            raise Invalid((f.name,), f"no file static/{value} (a path under static/, such as images/photo.jpg)")
        return StaticFile(value)
    if f.kind == "nav":
        items = []
        for index, item in enumerate(value):
            extra = set(item) - {"label", "page"}
            if extra:
                raise Invalid((f.name, index, sorted(extra)[0]),
                              f"unknown field {sorted(extra)[0]!r}; expected label, page", at_key=True)
            for key in ("label", "page"):
                if key not in item:
                    raise Invalid((f.name, index), f"missing required field {key!r}")
            items.append(NavItem(item["label"], item["page"]))
        return items
    return value  # references: checked once every collection is loaded


def _inside(path: Path, folder: Path) -> bool:
    try:
        return path.resolve().is_relative_to(folder.resolve())
    except OSError:
        return False


def _optional(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A converter that keeps None (an optional field left out) as it is."""
    return lambda value: None if value is None else convert(value)


_ENCODE: dict[str, Callable[[Any], Any]] = {
    "date": _optional(dt.date.toordinal),
    "markdown": _optional(lambda value: (value.source, value.html)),
    "static": _optional(str),
    "ref": _optional(str),
    "refs": tuple,
    "nav": lambda value: tuple((item.label, item.page) for item in value),
}
_DECODE: dict[str, Callable[[Any], Any]] = {
    "date": _optional(dt.date.fromordinal),
    "markdown": _optional(lambda value: Markdown(*value)),
    "static": _optional(StaticFile),
    "ref": _optional(str),
    "refs": list,
    "nav": lambda value: [NavItem(*item) for item in value],
}

# pydantic's error types, told the way the rest of the engine tells them.
_EXPECTED = {
    "string_type": "text", "date_type": "a date written YYYY-MM-DD", "list_type": "a list",
    "dict_type": "a mapping", "int_type": "a whole number", "float_type": "a number",
    "bool_type": "true or false", "datetime_type": "a date and time written YYYY-MM-DD HH:MM",
}


def _invalid(error: dict, names: list[str]) -> Invalid:
    loc, kind = tuple(error["loc"]), error["type"]
    if kind == "extra_forbidden":
        return Invalid(loc, f"unknown field {loc[-1]!r}; expected {', '.join(names)}", at_key=True)
    if kind == "missing":
        return Invalid(loc[:-1], f"missing required field {loc[-1]!r}")
    if kind in _EXPECTED:
        return Invalid(loc, f"expected {_EXPECTED[kind]}, got {describe_value(error.get('input'))}")
    if kind == "string_too_short":
        return Invalid(loc, "must not be empty")
    return Invalid(loc, error["msg"][0].lower() + error["msg"][1:])


def locate(node: yaml.Node, loc: tuple, *, at_key: bool = False) -> yaml.Node:
    """The YAML node at pydantic's ``loc`` (field names, list positions), or the deepest one found.

    With ``at_key`` (an unknown field) the last step ends on the key rather than its value.
    """
    import yaml

    for position, part in enumerate(loc):
        key_wanted = position + 1 < len(loc) and loc[position + 1] == "[key]" or (
            at_key and position == len(loc) - 1)
        if isinstance(node, yaml.MappingNode):
            pair = next(((k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == str(part)),
                        None)
            if pair is None:
                return node
            node = pair[0] if key_wanted else pair[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
        else:
            return node
    return node


def describe_value(value: Any) -> str:
    """What a YAML value is, with the hint a person needs when YAML read it as something else."""
    if isinstance(value, bool):
        return ("a boolean (YAML reads yes/no/on/off/true/false as booleans; "
                "put the text in quotes)")
    if isinstance(value, (int, float)):
        return ("a number (YAML reads 0755 as 493 and 12:30 as 750; "
                "put the text in quotes)")
    if isinstance(value, dt.datetime):
        return "a date and time"
    if isinstance(value, dt.date):
        return "a date (put the text in quotes)"
    if value is None:
        return "nothing"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__
