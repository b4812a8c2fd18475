"""Load and validate the YAML content: site settings, user profiles, storefronts.

Every record is checked field by field against a small schema, and every
problem is reported as ``content/…/file.yaml:LINE:COL: message`` so a person
can jump straight to it. YAML's sharp edges (``no`` read as False, ``12:30``
read as a number, duplicate keys silently dropping data, alias bombs) are
turned into errors instead of surprises.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import ContentError, ContentErrors
from .yaml_source import Loader, display_path, located_error, read_yaml

SLUG_PATTERN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*\Z")
MAX_SLUG_LENGTH = 64
# Names that break on some file systems or shadow the site's own files.
RESERVED_SLUGS = frozenset(
    {"con", "prn", "aux", "nul", "index", "static"}
    | {f"com{i}" for i in range(10)}
    | {f"lpt{i}" for i in range(10)}
)
NAV_PAGES = {"home": "pages.index", "about": "pages.about",
             "users": "pages.users", "stores": "pages.stores"}


@dataclass(frozen=True)
class NavItem:
    label: str
    page: str

    @property
    def endpoint(self) -> str:
        return NAV_PAGES[self.page]


@dataclass(frozen=True)
class Site:
    title: str
    tagline: str
    base_url: str
    about: str
    nav: tuple[NavItem, ...]


@dataclass(frozen=True)
class User:
    username: str
    name: str
    joined: dt.date
    awards: tuple[str, ...]
    bio: str


@dataclass(frozen=True)
class Store:
    slug: str
    city: str
    name: str
    address: str
    hours: tuple[tuple[str, str], ...]
    phone: str


@dataclass
class Content:
    site: Site
    users: dict[str, User] = field(default_factory=dict)
    stores: dict[str, Store] = field(default_factory=dict)


class _Invalid(Exception):
    """A value that does not fit its field, raised at the node that holds it."""

    def __init__(self, message: str, node: yaml.Node):
        super().__init__(message)
        self.message, self.node = message, node


# ---------------------------------------------------------------- field checks

def _describe(value: Any) -> str:
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


def _text(value: Any, node: yaml.Node) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"expected text, got {_describe(value)}", node)
    if not value.strip():
        raise _Invalid("must not be empty", node)
    return value.strip()


def _date(value: Any, node: yaml.Node) -> dt.date:
    if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
        raise _Invalid(f"expected a date written YYYY-MM-DD, got {_describe(value)}", node)
    return value


def _url(value: Any, node: yaml.Node) -> str:
    url = _text(value, node)
    if not re.match(r"https?://[^/\s]+(/\S*)?\Z", url):
        raise _Invalid(f"expected an http(s) URL such as https://example.org/, got {url!r}", node)
    return url if url.endswith("/") else url + "/"


def _text_list(value: Any, node: yaml.Node) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _Invalid(f"expected a list, got {_describe(value)}", node)
    return tuple(_text(item, item_node) for item, item_node in zip(value, node.value))


def _text_map(value: Any, node: yaml.Node) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict) or not value:
        raise _Invalid(f"expected a mapping such as 'Monday to Friday: 9am-6pm', got {_describe(value)}", node)
    return tuple((_text(key, key_node), _text(value[key], value_node))
                 for (key_node, value_node), key in zip(node.value, value))


def _nav(value: Any, node: yaml.Node) -> tuple[NavItem, ...]:
    if not isinstance(value, list) or not value:
        raise _Invalid(f"expected a list of {{label, page}} items, got {_describe(value)}", node)
    items = []
    for item, item_node in zip(value, node.value):
        fields = _check_mapping(item, item_node, {"label": (_text, True), "page": (_nav_page, True)})
        items.append(NavItem(**fields))
    return tuple(items)


def _nav_page(value: Any, node: yaml.Node) -> str:
    page = _text(value, node)
    if page not in NAV_PAGES:
        raise _Invalid(f"unknown page {page!r}; expected one of {', '.join(NAV_PAGES)}", node)
    return page


Check = Callable[[Any, yaml.Node], Any]
Schema = dict[str, tuple[Check, bool]]  # field -> (check, required)

SITE_SCHEMA: Schema = {"title": (_text, True), "tagline": (_text, True), "base_url": (_url, True),
                       "about": (_text, True), "nav": (_nav, True)}
USER_SCHEMA: Schema = {"username": (_text, True), "name": (_text, True), "joined": (_date, True),
                       "awards": (_text_list, False), "bio": (_text, False)}
STORE_SCHEMA: Schema = {"city": (_text, True), "name": (_text, True), "address": (_text, True),
                        "hours": (_text_map, True), "phone": (_text, True)}
OPTIONAL_DEFAULTS = {"awards": (), "bio": ""}


def _check_mapping(value: Any, node: yaml.Node, schema: Schema) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Invalid(f"expected a mapping of fields, got {_describe(value)}", node)
    nodes = {key_node.value: (key_node, value_node) for key_node, value_node in node.value}
    for key in value:
        if key not in schema:
            known = ", ".join(schema)
            raise _Invalid(f"unknown field {key!r}; expected {known}", nodes[str(key)][0]
                           if str(key) in nodes else node)
    fields = {}
    for name, (check, required) in schema.items():
        if name in value:
            fields[name] = check(value[name], nodes[name][1])
        elif required:
            raise _Invalid(f"missing required field {name!r}", node)
        else:
            fields[name] = OPTIONAL_DEFAULTS[name]
    return fields


def parse_record(path: Path, root: Path, schema: Schema,
                 data: bytes | None = None) -> tuple[dict[str, Any], yaml.Node]:
    """Parse one YAML file into checked fields; raise ContentError on the first problem."""
    value, node, shown = read_yaml(path, root, data)
    try:
        return _check_mapping(value, node, schema), node
    except _Invalid as exc:
        raise located_error(shown, exc.node, exc.message) from None


def check_slug(slug: str) -> str | None:
    """Why ``slug`` cannot be part of a URL, or None when it can."""
    if len(slug) > MAX_SLUG_LENGTH:
        return f"name {slug!r} is longer than {MAX_SLUG_LENGTH} characters"
    if not SLUG_PATTERN.match(slug):
        return (f"name {slug!r} is not a valid slug: use lowercase ASCII letters, digits "
                "and single hyphens (e.g. guido-van-rossum.yaml)")
    if slug in RESERVED_SLUGS:
        return f"name {slug!r} is reserved"
    return None


def load_site(content_dir: Path, root: Path) -> Site:
    path = content_dir / "site.yaml"
    if not path.is_file():
        raise ContentError(display_path(path, root), 1, 1, "missing: every site needs content/site.yaml")
    fields, _ = parse_record(path, root, SITE_SCHEMA)
    return Site(**fields)


def load_user(path: Path, root: Path, data: bytes | None = None) -> User:
    fields, node = parse_record(path, root, USER_SCHEMA, data)
    if fields["username"] != path.stem:
        key_node = next(v for k, v in node.value if k.value == "username")
        raise located_error(display_path(path, root), key_node,
                     f"username {fields['username']!r} must match the file name {path.stem!r}")
    return User(**fields)


def load_store(path: Path, root: Path, data: bytes | None = None) -> Store:
    fields, _ = parse_record(path, root, STORE_SCHEMA, data)
    return Store(slug=path.stem, **fields)


def record_files(folder: Path) -> list[Path]:
    """The .yaml files of a folder, in name order; hidden files and editor backups skipped."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir()
                  if p.suffix in (".yaml", ".yml") and not p.name.startswith(".") and p.is_file())


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


RECORD_LOADERS: dict[str, Callable[..., Any]] = {"users": load_user, "stores": load_store}


def record_paths(root: Path) -> tuple[dict[str, list[Path]], list[ContentError]]:
    """The loadable record files of each folder, and the errors in the others' names.

    Only names are looked at, so a build can check them all cheaply and parse
    just the files it needs (see sitegen/freeze.py).
    """
    errors: list[ContentError] = []
    paths: dict[str, list[Path]] = {}
    for folder in RECORD_LOADERS:
        found = record_files(root / "content" / folder)
        bad = _slug_errors(found, root)
        errors.extend(bad)
        bad_paths = {e.path for e in bad}
        paths[folder] = [path for path in found if display_path(path, root) not in bad_paths] if bad else found
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


def load_content(root: Path) -> Content:
    """Load everything under ``root/content``; raise ContentErrors listing every problem."""
    errors: list[ContentError] = []
    site = None
    try:
        site = load_site(root / "content", root)
    except ContentError as exc:
        errors.append(exc)
    paths, bad_names = record_paths(root)
    errors.extend(bad_names)
    loaded: dict[str, dict] = {folder: {} for folder in RECORD_LOADERS}
    for folder, load in RECORD_LOADERS.items():
        for path in paths[folder]:
            try:
                loaded[folder][path.stem] = load(path, root)
            except ContentError as exc:
                errors.append(exc)
    if errors:
        raise ContentErrors(errors)
    assert site is not None
    return Content(site=site, users=loaded["users"], stores=loaded["stores"])


def reload_file(content: Content, path: Path, root: Path) -> Content:
    """``content`` with the one file at ``path`` read again, or dropped when it is gone.

    The preview calls this on every save so a large site is never re-parsed
    whole. It returns a new Content (the old one stays intact for requests
    still using it) and raises ContentError when the file is wrong; files that
    are not content records leave ``content`` as it is.
    """
    content_dir = root / "content"
    if path == content_dir / "site.yaml":
        return dataclasses.replace(content, site=load_site(content_dir, root))
    folder = path.parent.name
    if path.parent.parent != content_dir or folder not in RECORD_LOADERS \
            or path.suffix not in (".yaml", ".yml") or path.name.startswith("."):
        return content
    records = dict(getattr(content, folder))
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
                               f"name collides with content/{folder}/{twins[0]}.yaml "
                               "(same URL after case folding)")
        is_new = slug not in records
        records[slug] = RECORD_LOADERS[folder](path, root)
        if is_new:  # keep load_content's order: by file name
            records = {key: records[key] for key in sorted(records, key=record_order)}
    return dataclasses.replace(content, **{folder: records})
