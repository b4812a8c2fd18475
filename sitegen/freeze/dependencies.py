"""Record what each page is built from while it renders, for incremental freezing.

A page's dependencies are plain strings:

- a source file, by its path in the project: its record's YAML
  (``content/events/opening.yaml``), ``content/site.yaml``, every template it
  rendered with all they extend or include (``templates/base.html``), the
  static file it serves (``static/styles/site.css``);
- a static file it links to (``static?styles/site.css``): only whether it
  exists matters, since the link does not carry the file's content;
- a collection as a whole: the list of its records (``events:*``), for pages
  that list records or link to each;
- one field of one record reached through a list (``events:opening.title``): a
  listing page depends on the fields it shows of the records it shows.
  Editing a record's text field then re-renders the record's own page only,
  and editing a field a listing shows, that page and the one listing page
  that shows the record.

Nothing here changes what a page renders: the wrappers hand back the very
same values, they only take notes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

SITE = "content/site.yaml"
ANY_TEMPLATE = "templates:*"


def record_key(kind: str, slug: str) -> str:
    return f"content/{kind}/{slug}.yaml"


def members_key(kind: str) -> str:
    return f"{kind}:*"


def field_key(kind: str, slug: str, field: str) -> str:
    return f"{kind}:{slug}.{field}"


def static_link_key(filename: str) -> str:
    return f"static?{filename}"


class Deferred(Exception):
    """The page needs records this process does not hold; render it once all are loaded."""


class Recorder:
    """Collects the dependencies of the page being rendered.

    ``add`` is called a dozen times a page, so while recording it is the
    set's own ``add``, and otherwise a function that ignores its argument.
    """

    def __init__(self) -> None:
        self.found: set[str] = set()
        self.add: Callable[[str], None] = _ignore

    def start(self) -> None:
        self.found = set()
        self.add = self.found.add

    def stop(self) -> tuple[str, ...]:
        """The page's dependencies, sorted (sorted here, in the workers, rather than by the parent)."""
        self.add = _ignore
        return tuple(sorted(self.found))


def _ignore(dependency: str) -> None:
    """What Recorder.add does while no page is being recorded."""


class ListedRecord:
    """A record reached by listing a collection: each field read is noted, for this record alone."""

    __slots__ = ("_record", "_prefix", "_recorder")

    def __init__(self, record: Any, prefix: str, recorder: Recorder):
        self._record, self._prefix, self._recorder = record, prefix, recorder

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # Jinja asking for __html__, say: no field
            raise AttributeError(name)
        if name != "slug":  # the slug is part of the list itself
            self._recorder.add(self._prefix + name)
        return getattr(self._record, name)


class TrackedRecords(Mapping):
    """One collection as the pages see it.

    Looking a record up makes the page depend on that record's file; listing
    the collection makes it depend on the list and on the fields it reads.
    ``complete=False`` holds only some records (a worker's share): a page
    that needs others raises Deferred instead of rendering wrongly. Such a
    share still knows the slugs in order (``listed``; None stands for the
    slug of a record it does not hold), so it can count the collection and
    render the listing pages whose records it holds.
    """

    def __init__(self, kind: str, records: Any, recorder: Recorder, *, complete: bool,
                 listed: Sequence[str | None]):
        self._kind, self._records, self._recorder, self._complete = kind, records, recorder, complete
        self._listed = listed

    def __getitem__(self, slug: str) -> Any:
        self._recorder.add(record_key(self._kind, slug))
        if slug not in self._records and not self._complete:
            raise Deferred(slug)
        return self._records[slug]

    def __contains__(self, slug: object) -> bool:
        try:
            self[slug]  # type: ignore[index]
        except KeyError:
            return False
        return True

    def _whole(self) -> Mapping[str, Any]:
        self._recorder.add(members_key(self._kind))
        if not self._complete:
            raise Deferred(self._kind)
        return self._records

    def __iter__(self) -> Iterator[str]:
        return iter(self._whole())

    def __len__(self) -> int:
        self._recorder.add(members_key(self._kind))
        return len(self._listed)

    def _listed_record(self, slug: str, record: Any) -> ListedRecord:
        return ListedRecord(record, f"{self._kind}:{slug}.", self._recorder)

    def values(self) -> list[ListedRecord]:  # type: ignore[override]
        return [self._listed_record(slug, record) for slug, record in self._whole().items()]

    def items(self) -> list[tuple[str, ListedRecord]]:  # type: ignore[override]
        return [(slug, self._listed_record(slug, record)) for slug, record in self._whole().items()]

    def slice(self, start: int, stop: int) -> list[ListedRecord]:
        """Records ``start`` to ``stop`` of the list, decoding only those (a listing page).

        The slugs are a list: skipping to each page from the first record
        made 417 listing pages of 10,000 records cost 11 ms, 1 s at 100,000.
        """
        self._recorder.add(members_key(self._kind))
        slugs = self._listed[start:stop]
        if not self._complete and not all(slug in self._records for slug in slugs):
            raise Deferred(self._kind)
        return [self._listed_record(slug, self._records.listed(slug)) for slug in slugs]

    def first(self, count: int) -> list[ListedRecord]:
        return self.slice(0, count)


class TrackedContent:
    """The content as the pages see it while freezing (same attributes as Content)."""

    def __init__(self, settings: Any, collections: dict[str, TrackedRecords], recorder: Recorder):
        self._settings, self.collections, self._recorder = settings, collections, recorder

    @property
    def settings(self) -> Any:
        self._recorder.add(SITE)
        return self._settings


def track_app(app: Any, recorder: Recorder) -> None:
    """Hook the recorder into an app that is about to be frozen.

    Templates get a url_for that remembers the links it built (the same on
    every page of a freeze) and still notes each static file linked.
    """
    from flask import before_render_template, request
    from jinja2 import TemplateNotFound, meta

    from ..builtin_pages import page_url

    from ..contained import RefusedTemplate

    closures: dict[str, tuple[str, ...]] = {}

    def template_closure(name: str) -> tuple[str, ...]:
        """The template and everything it extends or includes, as dependencies."""
        if name not in closures:
            found, dynamic, pending = set(), False, [name]
            while pending:
                current = pending.pop()
                if current in found:
                    continue
                found.add(current)
                try:
                    source, filename, _ = app.jinja_env.loader.get_source(app.jinja_env, current)
                except TemplateNotFound:  # e.g. `include ... ignore missing`: depend on it appearing
                    continue
                except RefusedTemplate:  # rendering reports it, at the include that asks for it
                    continue
                # Named, so that a syntax error in a template reached through extends or import names it.
                parsed = app.jinja_env.parse(source, current, filename)
                for referenced in meta.find_referenced_templates(parsed):
                    if referenced is None:  # a name computed at render time: any template may be it
                        dynamic = True
                    else:
                        pending.append(referenced)
            closures[name] = tuple(sorted(f"templates/{t}" for t in found)) + ((ANY_TEMPLATE,) if dynamic else ())
        return closures[name]

    def note_template(sender: Any, template: Any, context: dict, **extra: Any) -> None:
        for dependency in template_closure(template.name):
            recorder.add(dependency)

    before_render_template.connect(note_template, app, weak=False)

    flask_url_for = app.url_for
    built: dict[tuple, tuple[str, str | None]] = {}  # arguments -> (URL, the static file it links to)

    def url_for(endpoint: str, **values: Any) -> str:
        """Templates' url_for: what Flask's builds, remembered where it repeats on every page.

        Static files and pages without arguments are remembered (with any
        ``_anchor``-style option, which gives the same link on every page).
        Any other link (a record's, a listing page's) is built each time,
        since remembering each would grow with the site, as page_url builds
        it.
        """
        if (endpoint == "static" or not values) and endpoint[:1] != ".":
            key = (endpoint, *values.items())
            found = built.get(key)
            if found is None:
                found = built[key] = (flask_url_for(endpoint, **values),
                                      static_link_key(values["filename"]) if endpoint == "static" else None)
            if found[1]:
                recorder.add(found[1])
            return found[0]
        return page_url(endpoint, values)

    app.jinja_env.globals["url_for"] = url_for

    @app.url_defaults
    def note_static_link(endpoint: str, values: dict) -> None:
        if endpoint == "static":  # links made in Python code (ignored while no page is recorded)
            recorder.add(static_link_key(values["filename"]))

    @app.before_request
    def note_static_file() -> None:
        if request.endpoint == "static" and request.view_args:
            recorder.add(f"static/{request.view_args['filename']}")
