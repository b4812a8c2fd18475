"""Load and check the content/ of a site: its settings and every collection it declares.

Each file is checked against its collection's record class (sitegen/content/model.py),
and every problem is reported as ``content/…/file.yaml:LINE:COL: message``, all
of a run together, so a person can jump straight to each.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..base_url import normalized_base_url
from ..errors import ContentError, ContentErrors, SiteError
from .model import (Invalid, ParseContext, Record, Records, Schema, Settings, base_path_of, is_record_file,
                    locate)
from .yaml_source import display_path, located_error, read_yaml

if TYPE_CHECKING:
    from ..site import Site

SETTINGS_FILE = "content/site.yaml"
SLUG_PATTERN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*\Z")
MAX_SLUG_LENGTH = 64
# Names that break on some file systems or shadow the site's own files.
RESERVED_SLUGS = frozenset(
    {"con", "prn", "aux", "nul", "index", "static", "page"}
    | {f"com{i}" for i in range(10)}
    | {f"lpt{i}" for i in range(10)}
)


@dataclass
class Content:
    settings: Settings
    collections: dict[str, Records]

    def __getattr__(self, name: str) -> Records:
        """A collection by its name: ``content.events``."""
        try:
            return self.__dict__["collections"][name]
        except KeyError:
            raise AttributeError(name) from None


def current_content() -> Content:
    """The content of the app handling the current request."""
    from flask import current_app

    return current_app.extensions["site_content"]


# ---------------------------------------------------------------- schemas

_SCHEMAS: dict[type, Schema] = {}


def schema_of(model: type[Record], site: Site) -> Schema:
    """The checkable form of a record class, made once; references resolve through ``site``'s collections."""
    schema = _SCHEMAS.get(model)
    if schema is None:
        schema = Schema(model)
        for field in schema.references:
            target = site.collection_of(field.target)
            if target is None:
                raise SiteError(f"{model.__name__}.{field.name} refers to {field.target.__name__}, "
                                "which is not declared as a collection with @site.collection")
            setattr(model, field.name, _Reference(field.name, target.name, field.kind == "refs"))
        _SCHEMAS[model] = schema
    return schema


class _Reference:
    """A reference field: the record holds the slug, templates and views get the record itself."""

    def __init__(self, name: str, collection: str, many: bool):
        self.name, self.collection, self.many = name, collection, many

    def __get__(self, record: Any, owner: type | None = None) -> Any:
        if record is None:
            return self
        slug = record.__dict__[self.name]
        if slug is None:
            return None
        records = current_content().collections[self.collection]
        return [records[each] for each in slug] if self.many else records[slug]

    def __set__(self, record: Any, value: Any) -> None:
        record.__dict__[self.name] = value


def parse_context(site: Site, base_url: str | None) -> ParseContext:
    return ParseContext(site.root, base_path_of(base_url or "/"), site.raw_html)


# ---------------------------------------------------------------- one file

def load_record(schema: Schema, path: Path, root: Path, context: ParseContext,
                data: bytes | None = None) -> Record:
    """One record from its file; raises ContentError naming the file, line and column."""
    value, node, shown = read_yaml(path, root, data)
    return schema.build(path.stem, _checked(schema, value, node, shown, context))


def _checked(schema: Schema, value: Any, node: Any, shown: str, context: ParseContext,
             then: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """The fields of ``value``, checked (and by ``then`` too); an Invalid becomes a ContentError at its node."""
    try:
        fields = schema.check(value, context)
        if then:
            then(fields)
    except Invalid as exc:
        raise located_error(shown, locate(node, exc.loc, at_key=exc.at_key), exc.message) from None
    return fields


def settings_schema(site: Site) -> Schema:
    """The checkable form of the site's settings class (content/site.yaml)."""
    return schema_of(site.settings_model, site)


def load_settings(site: Site, root: Path, base_url: str | None = None) -> Settings:
    path = root / SETTINGS_FILE
    if not path.is_file():
        raise ContentError(SETTINGS_FILE, 1, 1, "missing: every site needs content/site.yaml")
    value, node, shown = read_yaml(path, root)
    schema = settings_schema(site)
    context = parse_context(site, base_url or (value.get("base_url") if isinstance(value, dict) else None))
    fields = _checked(schema, value, node, shown, context, then=lambda fields: _check_settings(site, fields))
    return schema.build("site", fields)


def _check_settings(site: Site, fields: dict[str, Any]) -> None:
    try:
        fields["base_url"] = normalized_base_url(fields["base_url"])
    except ValueError as exc:
        raise Invalid(("base_url",), str(exc)) from None
    pages = site.page_names()
    for index, item in enumerate(fields["nav"]):
        if item.page not in pages:
            raise Invalid(("nav", index, "page"),
                          f"unknown page {item.page!r}; expected one of {', '.join(pages) or 'no page yet'} "
                          "(a route without parameters in site.py, or a collection with a listing)")


# ---------------------------------------------------------------- file names

def check_slug(slug: str) -> str | None:
    """Why ``slug`` cannot be part of a URL, or None when it can."""
    if len(slug) > MAX_SLUG_LENGTH:
        return f"name {slug!r} is longer than {MAX_SLUG_LENGTH} characters"
    if not SLUG_PATTERN.match(slug):
        return (f"name {slug!r} is not a valid slug: use lowercase ASCII letters, digits "
                "and single hyphens (e.g. opening-night.yaml)")
    if slug in RESERVED_SLUGS:
        return f"name {slug!r} is reserved"
    return None


def record_files(folder: Path) -> list[Path]:
    """The .yaml files of a folder, in name order; hidden files and editor backups skipped."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir()
                  if is_record_file(p.name) and p.is_file())


def record_order(slug: str) -> str:
    """Records are listed in file-name order, as load_content reads them."""
    return slug + ".yaml"


def _fold(name: str) -> str:
    """A name as a case-insensitive, normalizing file system may see it (ASCII needs no tables)."""
    return name.lower() if name.isascii() else unicodedata.normalize("NFKC", name).casefold()


def _slug_errors(paths: Iterable[Path], root: Path) -> list[ContentError]:
    """Bad file names and names that would land on one URL or one file."""
    errors, by_folded = [], {}
    for path in paths:
        if path.suffix != ".yaml":
            errors.append(ContentError(display_path(path, root), 1, 1, "content files must end in .yaml"))
            continue
        problem = check_slug(path.stem)
        if problem:
            errors.append(ContentError(display_path(path, root), 1, 1, problem))
        by_folded.setdefault(_fold(path.stem), []).append(path)
    for twins in by_folded.values():
        for path in twins if len(twins) > 1 else ():
            others = ", ".join(display_path(p, root) for p in twins if p != path)
            errors.append(ContentError(display_path(path, root), 1, 1,
                                       f"name collides with {others} (same URL after case folding)"))
    return errors


def record_paths(site: Site, root: Path) -> tuple[dict[str, list[Path]], list[ContentError]]:
    """The loadable record files of each collection, and the errors in the others' names.

    Only names are looked at, so a build can check them all cheaply and parse
    just the files it needs (see sitegen/freeze/build.py).
    """
    errors: list[ContentError] = []
    paths: dict[str, list[Path]] = {}
    for name in site.collections:
        found = record_files(root / "content" / name)
        bad = _slug_errors(found, root)
        errors.extend(bad)
        bad_paths = {e.path for e in bad}
        paths[name] = [path for path in found if display_path(path, root) not in bad_paths] if bad else found
    return paths, errors


def names_are_clean(names: Iterable[str]) -> bool:
    """Whether these file names of one folder are all valid, distinct slugs.

    A quick check on plain names; record_paths explains any problem.
    """
    seen = set()
    for name in names:
        stem, suffix = name[: -len(".yaml")], name[-len(".yaml"):]
        folded = _fold(stem)
        if suffix != ".yaml" or check_slug(stem) or folded in seen:
            return False
        seen.add(folded)
    return True


# ---------------------------------------------------------------- references

Reference = tuple[str, str, str, "int | None", str, str]


def find_references(site: Site, collections: dict[str, dict[str, Any]], *,
                    encoded: bool = False) -> list[Reference]:
    """Every reference among the records, by collection and slug (records as Schema.encode gives them
    when ``encoded``): (collection, slug, field, position in a list or None, target collection, slug)."""
    found = []
    for name, collection in site.collections.items():
        schema = schema_of(collection.model, site)
        if not schema.references:
            continue
        targets = {field.name: site.collection_of(field.target).name for field in schema.references}
        for slug, record in collections[name].items():
            found += [(name, slug, field.name, position, targets[field.name], target)
                      for field, position, target in schema.reference_slugs(record if encoded else
                                                                            schema.values(record))]
    return found


def reference_errors(root: Path, slugs: dict[str, Any], references: Iterable[Reference]) -> list[ContentError]:
    """An error for each reference to a record that is not among ``slugs`` (collection -> its slugs).

    The file is read again only to locate a bad reference.
    """
    errors = []
    for collection, slug, field, position, target, target_slug in references:
        if target_slug in slugs[target]:
            continue
        path = root / "content" / collection / f"{slug}.yaml"
        loc = (field,) if position is None else (field, position)
        try:
            _, node, shown = read_yaml(path, root)
            place = locate(node, loc)
        except ContentError:
            shown, place = display_path(path, root), None
        errors.append(located_error(shown, place, f"no {_singular(target)} {target_slug!r} in content/{target}/"))
    return errors


def _singular(name: str) -> str:
    return name[:-1] if name.endswith("s") and not name.endswith("ss") else name


def check_references(site: Site, root: Path, content: Content) -> list[ContentError]:
    """An error for each reference, in any collection, to a record that does not exist."""
    return reference_errors(root, content.collections, find_references(site, content.collections))


# ---------------------------------------------------------------- everything

def load_content(site: Site, root: Path | None = None, base_url: str | None = None) -> Content:
    """Load everything under content/; raise ContentErrors listing every problem."""
    root = Path(root or site.root).resolve()
    errors: list[ContentError] = []
    settings = None
    try:
        settings = load_settings(site, root, base_url)
    except ContentError as exc:
        errors.append(exc)
    context = parse_context(site, base_url or (settings.base_url if settings else None))
    paths, bad_names = record_paths(site, root)
    errors.extend(bad_names)
    collections: dict[str, Records] = {}
    for name, collection in site.collections.items():
        schema = schema_of(collection.model, site)
        records = collections[name] = Records()
        for path in paths[name]:
            try:
                records[path.stem] = load_record(schema, path, root, context)
            except ContentError as exc:
                errors.append(exc)
    content = Content(settings, collections)  # type: ignore[arg-type]
    if not errors:
        errors = check_references(site, root, content)
    if errors:
        raise ContentErrors(errors)
    return content


def reload_file(site: Site, content: Content, path: Path, root: Path) -> Content:
    """``content`` with the one file at ``path`` read again, or dropped when it is gone.

    The preview calls this on every save so a large site is never re-parsed
    whole. It returns a new Content (the old one stays intact for requests
    still using it) and raises ContentError when the file is wrong; files
    that are not content records leave ``content`` as it is. References
    are checked apart (check_references): a deleted record breaks others.
    """
    content_dir = root / "content"
    if path == root / SETTINGS_FILE:
        return dataclasses.replace(content, settings=load_settings(site, root))
    name = path.parent.name
    if path.parent.parent != content_dir or name not in site.collections \
            or not is_record_file(path.name):
        return content
    records = Records(content.collections[name])
    slug = path.stem
    if not path.is_file():
        records.pop(slug, None)
    else:
        problems = _slug_errors([path], root)
        if problems:
            raise problems[0]
        twins = [other for other in records if other != slug and _fold(other) == _fold(slug)]
        if twins:
            raise ContentError(display_path(path, root), 1, 1,
                               f"name collides with content/{name}/{twins[0]}.yaml (same URL after case folding)")
        is_new = slug not in records
        schema = schema_of(site.collections[name].model, site)
        records[slug] = load_record(schema, path, root, parse_context(site, None))
        if is_new:  # keep load_content's order: by file name
            records = Records((key, records[key]) for key in sorted(records, key=record_order))
    return dataclasses.replace(content, collections={**content.collections, name: records})
