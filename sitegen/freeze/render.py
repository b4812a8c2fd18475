"""The Flask side of a freeze: list the site's URLs, render shares of them through Frozen-Flask.

Imported only when some page has to be rendered, so a freeze with nothing to
do never loads Flask. Shares run in forked processes (the work is CPU-bound),
each with its own app and its own Freezer over its URLs, created after the
fork; the parent checks paths and missing URL generators once over all URLs.
"""

from __future__ import annotations

import bisect
import contextlib
import ctypes
import functools
import marshal
import mimetypes
import os
import signal
import traceback
import unicodedata
import warnings
import weakref
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote

from flask import Flask, current_app
from flask_frozen import Freezer, FrozenFlaskWarning, MimetypeMismatchWarning
from jinja2 import BytecodeCache
from jinja2.bccache import Bucket

from ..app import create_app
from ..contained import READ_LOG, note_read
from ..content.loader import (Content, find_references, load_record, parse_context, record_order, schema_of,
                              settings_schema)
from ..content.model import Settings
from ..errors import ContentError, SiteError, describe_os_error, describe_template_error
from ..routes import RecordRoute, enumerated_urls, record_routes
from ..site import Site
from .dependencies import Deferred, Recorder, TrackedContent, TrackedRecords, record_key, track_app
from .fetch import Fetcher
from .incremental import (CONTENT_DIGEST, LazyRecords, ListedSlugs, change_stamp, cyclic_gc, digest, field_digests,
                          racy_cutoff, read_file, source_entry)
from .linkcheck import page_links

# Editor leftovers. Hidden files are ".?*", not ".*": Frozen-Flask matches the patterns
# against the static folder's own relative path too, ".", and ".*" then skipped every file
# directly in static/.
STATIC_IGNORE = [".?*", "*~", "*.swp", "*.swx", "*.tmp"]
MAX_PATH_SEGMENT = 200
PROGRESS_SECONDS = 0.1
# Pages a share hands over at a time, as it renders them: a share that kept its pages until its end
# held about 1 KB each (their URLs, files, dependencies and links), and the parent unpickled every
# share's list at once at the end.
PAGES_BATCH = 1000
PARSE_PART = 10_000  # records whose digests a worker sends at a time (see parse_share)
UNREAD = (-1, -1, bytes(CONTENT_DIGEST))  # the entry of a record that could not be parsed (the freeze stops)


def fold_file(file: str) -> str:
    """A file name as a case-insensitive, normalizing disk sees it (ASCII needs no Unicode tables)."""
    return file.lower() if file.isascii() else unicodedata.normalize("NFC", file).casefold()


class CheckedFreezer(Freezer):
    """A Freezer that refuses any URL whose file would escape the build.

    Frozen-Flask joins the decoded URL to the destination as it is; a slug
    such as ``..`` would write outside it. A case twin, which would overwrite
    another page, is refused by check_collisions: over the planned pages
    before any is rendered, and over every page of the build before a freeze
    that may have new pages (a first one, a record added) is committed. A
    dictionary of the files of each share as well held about 110 bytes a
    page in each worker. The url_for log is
    off: every page comes from a generator, and the log costs time that
    grows with the links on a page.
    """

    def __init__(self, app: Flask, **options: Any):
        super().__init__(app, log_url_for=False, **options)
        self.current_url: str | None = None

    def urlpath_to_filepath(self, path: str) -> str:
        self.current_url = path
        relative = super().urlpath_to_filepath(path)
        for segment in relative.split("/"):
            if segment in ("", ".", "..") or "\\" in segment or "\0" in segment:
                raise SiteError(f"refusing URL {path!r}: it does not map to a file inside the build")
            if len(segment.encode()) > MAX_PATH_SEGMENT:
                raise SiteError(f"refusing URL {path!r}: a path segment is over {MAX_PATH_SEGMENT} bytes")
        return relative


class ShareFreezer(CheckedFreezer):
    """Freezes one worker's share: the pages of some records, and some other URLs.

    The record pages come from the site's own generators, fed only this
    share's records; the parent checks missing generators and colliding files
    once over all shares.
    """

    def __init__(self, app: Flask, records: dict[str, list[str]], urls: list[str]):
        super().__init__(app, with_static_files=False, with_no_argument_rules=False)
        self.owner: tuple[str, str] | None = None  # the record of the page being built, if any
        register_record_generators(self, record_routes(app), records, on_page=self._note_owner)
        self.pending = iter(urls)
        self.links: tuple[str, ...] = ()  # what the page just built links to (see linkcheck.py)
        # The folder of the last page: most pages have a folder of their own, so remembering every
        # folder made cost about 140 bytes a page and spared few calls.
        self._folder = ""

        @self.register_generator
        def share():
            # Frozen-Flask unquotes what a generator yields; quoting first keeps the URL as planned.
            for url in self.pending:
                self.owner = None
                yield quote(url)

    def _note_owner(self, owner: tuple[str, str]) -> None:
        """Frozen-Flask builds each page as it is generated: the record generated is the page's."""
        self.owner = owner

    @functools.cached_property
    def root(self) -> Path:
        """The destination, computed once (Frozen-Flask's property builds it anew on every use)."""
        return Path(self.app.root_path) / self.app.config["FREEZER_DESTINATION"]

    @functools.cached_property
    def base_url(self) -> str:
        url = self.app.config["FREEZER_BASE_URL"] or "http://localhost/"
        return url if url.endswith("/") else url + "/"

    @functools.cached_property
    def fetcher(self) -> Fetcher:
        return Fetcher(self.app, self.app.config["FREEZER_BASE_URL"])

    def freeze_pages(self) -> Iterator[tuple[str, str]]:
        """Frozen-Flask's freeze_yield for a share: each page as (URL, its file in the build).

        Missing generators are checked once over all shares by plan_pages,
        and the staging tree starts empty: there is nothing to remove.
        Without Frozen-Flask's set of the URLs built: each page is planned
        for one share once (a record's by its route, any other by the plan),
        and the set held about 80 bytes a page, 40 MB in each record worker
        at a million users.
        """
        for url, _, _ in self._generate_all_urls():
            yield url, self._build_page(url)

    def _build_page(self, url: str) -> str:
        """Frozen-Flask's _build_one, for a destination that starts empty.

        A page the app answers with 200 is written here, without a test
        client, and without looking for an earlier copy of the file: the
        staging tree a freeze writes into holds none. Any other answer (a
        redirect to follow, an error) goes through Frozen-Flask's own build.
        """
        file = unicodedata.normalize("NFC", self.urlpath_to_filepath(url))
        page = self.fetcher.render(url)
        self.links = ()
        if page.status_code != 200:
            return self._build_one(url).relative_to(self.root).as_posix()
        if page.mimetype == "text/html":
            self.links = page_links(page.data, self.base_url + url.lstrip("/"), self.base_url)
        if not self.app.config["FREEZER_IGNORE_MIMETYPE_WARNINGS"]:
            guessed = mimetypes.guess_type(file)[0] or self.app.config["FREEZER_DEFAULT_MIMETYPE"]
            if guessed != page.mimetype:
                warnings.warn(f"Filename extension of {file.rpartition('/')[2]!r} (type {guessed}) "
                              f"does not match Content-Type: {page.content_type}", MimetypeMismatchWarning)
        path = os.path.join(self.root, file)
        folder = os.path.dirname(path)
        if folder != self._folder:
            try:
                os.mkdir(folder)  # its parent usually exists: one call instead of makedirs' stat and mkdir
            except FileNotFoundError:
                os.makedirs(folder, exist_ok=True)
            except FileExistsError:
                pass
            self._folder = folder
        _write_file(path, page.data)
        return file


def _write_file(path: str, data: bytes) -> None:
    """Write a new file with plain system calls, like incremental.read_file."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
    try:
        remaining = memoryview(data)
        while remaining:
            remaining = remaining[os.write(descriptor, remaining):]
    finally:
        os.close(descriptor)


def register_record_generators(freezer: Freezer, routes: list[RecordRoute], slugs: dict[str, list[str]],
                               on_page: Callable[[tuple[str, str]], None] | None = None) -> None:
    """The pages of each record, one per route typed with its collection (``<events:event>``);
    ``on_page`` hears of each page's record, (collection, slug), as it is generated.

    One iterator for all: a share that restarts its generators after a
    deferred page goes on from the page after it. Frozen-Flask closes the
    generator it was interrupted in, ``record_pages``, not this one, which
    makes each page as it is asked for (a list of them held 64 bytes a page
    in each worker).
    """
    pages = ((route, slug) for kind, names in slugs.items()
             for slug in names for route in routes if route.collection == kind)

    @freezer.register_generator
    def record_pages():
        for route, slug in pages:
            if on_page:
                on_page((route.collection, slug))
            yield route.endpoint, {route.argument: slug}


def register_page_generators(freezer: Freezer, counts: dict[str, int]) -> None:
    """Parameterized pages that belong to no record: listing pages, sitemap parts."""

    @freezer.register_generator
    def engine_pages():
        yield from enumerated_urls(freezer.app, counts)


def register_generators(freezer: Freezer, slugs: dict[str, list[str]]) -> None:
    """Every generator the site needs, for a freeze in one Freezer."""
    register_record_generators(freezer, record_routes(freezer.app), slugs)
    register_page_generators(freezer, {kind: len(names) for kind, names in slugs.items()})


def freeze_config(tree: Path) -> dict[str, Any]:
    return {
        "FREEZER_DESTINATION": str(tree),
        "FREEZER_STATIC_IGNORE": STATIC_IGNORE,
        "FREEZER_REMOVE_EXTRA_FILES": False,
        "PROPAGATE_EXCEPTIONS": True,
    }


def plan_pages(site: Site, settings: Settings, base_url: str | None, tree: Path,
               record_counts: dict[str, int], last: tuple | None = None) -> tuple:
    """The plan of the pages that belong to no record: (its key, their URLs -> their files, the
    listing pages of each paginated collection (URLs, first page first)); checks every endpoint
    has a generator. Not to be changed by the caller.

    Record pages are generated by the workers, each over its share of the records. ``last``, the
    last freeze's plan (its state keeps it, and the code it was made by is the same), is answered
    again when the settings and the number of records of each kind are too: an app made and URLs
    generated were 14 ms of a one-bio edit at 10,000 users, 80-90 ms at 100,000.
    """
    key = marshal.dumps((settings_schema(site).encode(settings), base_url, sorted(record_counts.items())))
    if last is not None and last[0] == key:
        return last
    return (key, *_plan_pages(site, settings, base_url, tree, record_counts))


def _plan_pages(site: Site, settings: Settings, base_url: str | None, tree: Path,
                record_counts: dict[str, int]) -> tuple[dict[str, str], dict[str, list[str]]]:
    content = Content(settings, {name: {} for name in site.collections})
    app = create_app(site, content, base_url=base_url, config=freeze_config(tree))
    app.config["FREEZER_BASE_URL"] = app.config["SITE_BASE_URL"]
    freezer = CheckedFreezer(app)
    register_page_generators(freezer, record_counts)
    pages: dict[str, str] = {}
    paginated = {name for name, collection in site.collections.items() if collection.listing and collection.per_page}
    listings: dict[str, list[str]] = {name: [] for name in paginated}
    # Listed by the workers, or by the engine (possibly none: a sitemap in one part).
    seen_endpoints = {route.endpoint for route in record_routes(app)} | set(app.extensions["sitegen_enumerated"])
    with warnings.catch_warnings():
        warnings.simplefilter("error", FrozenFlaskWarning)
        try:
            for url, endpoint, _ in freezer._generate_all_urls():
                seen_endpoints.add(endpoint)
                if url not in pages:
                    pages[url] = unicodedata.normalize("NFC", freezer.urlpath_to_filepath(url))
                    if endpoint in paginated:  # generated page by page (routes.register_site)
                        listings[endpoint].append(url)
            freezer._check_endpoints(seen_endpoints)
        except FrozenFlaskWarning as exc:
            raise SiteError(f"freeze failed: {exc}") from None
    check_collisions(pages.values())  # before any page is rendered
    return pages, listings


def check_collisions(files: Iterable[str]) -> None:
    """Refuse two pages that would land on one file on a case-insensitive or normalizing disk."""
    seen: dict[str, str] = {}
    for file in files:
        twin = seen.setdefault(fold_file(file), file)
        if twin != file:
            raise SiteError(f"pages {twin!r} and {file!r} would be written to the same file")


class StagedTemplateCache(BytecodeCache):
    """Compiled templates, read from earlier freezes and written beside this one's pages.

    Jinja checks each against its template's source and recompiles on a
    mismatch; new ones reach the state only if this freeze commits.
    """

    def __init__(self, committed: Path, staged: Path):
        self.committed, self.staged = committed, staged

    def load_bytecode(self, bucket: Bucket) -> None:
        for folder in (self.staged, self.committed):
            try:
                with open(folder / f"{bucket.key}.cache", "rb") as compiled:
                    bucket.load_bytecode(compiled)
                return
            except FileNotFoundError:
                continue

    def dump_bytecode(self, bucket: Bucket) -> None:
        self.staged.mkdir(parents=True, exist_ok=True)
        partial = self.staged / f"{bucket.key}.{os.getpid()}.tmp"
        with open(partial, "wb") as compiled:
            bucket.write_bytecode(compiled)
        os.replace(partial, self.staged / f"{bucket.key}.cache")


# ---------------------------------------------------------------- rendering a share

@dataclass
class Job:
    """What every share of one freeze has in common (inherited by the forked workers)."""

    root: Path
    base_url: str | None
    site: Site
    settings: Settings
    tree: Path
    templates: Path  # compiled templates of earlier freezes
    staged_templates: Path  # compiled by this one, committed with it
    dest: Path | None = None  # where the build goes (named by errors; pages are written into ``tree``)


@dataclass
class Share:
    records: dict[str, list[str]]  # kind -> slugs whose pages to render
    urls: list[str]  # other pages to render
    owners: dict[str, tuple[str, str]]  # url -> its record, for record pages deferred to a later round
    parse: dict[str, list[str]]  # kind -> slugs to read from their files first, in file-name order
    listed: dict[str, Sequence[str | None]]  # kind -> every slug, in file-name order (or a ListedWindow on them)
    complete: bool  # whether pages may read any record (read from its file when needed), not only ``parse``


class ListedWindow(Sequence):
    """The slugs of a collection as a share that parses a run of its records sees them: those of its
    run, from position ``start``; any other is None, the slug of a record the share does not hold.

    A page that needs one of those is deferred anyway (see TrackedRecords.slice), and the share
    still counts the whole collection.
    """

    def __init__(self, count: int, start: int, slugs: list[str]):
        self.count, self.start, self.slugs = count, start, slugs

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            start, stop, step = index.indices(self.count)
            if step == 1 and self.start <= start and stop <= self.start + len(self.slugs):  # a listing page of its own
                return self.slugs[start - self.start:stop - self.start]
            return [self[position] for position in range(start, stop, step)]
        position = index + self.count if index < 0 else index
        if not 0 <= position < self.count:
            raise IndexError(index)
        at = position - self.start
        return self.slugs[at] if 0 <= at < len(self.slugs) else None


class FileEntries:
    """The state entries (ctime, size, digest; see incremental.source_entry) of a run of records' files,
    packed: 32 bytes a record where a tuple of two numbers and a digest took about 180 in the parent."""

    def __init__(self) -> None:
        self.times, self.sizes, self.digests = array("q"), array("q"), bytearray()

    def append(self, entry: tuple[int, int, bytes]) -> None:
        self.times.append(entry[0])
        self.sizes.append(entry[1])
        self.digests += entry[2]

    def extend(self, other: FileEntries) -> None:
        self.times.extend(other.times)
        self.sizes.extend(other.sizes)
        self.digests += other.digests

    def __getitem__(self, position: int) -> tuple[int, int, bytes]:
        return (self.times[position], self.sizes[position],
                bytes(self.digests[position * CONTENT_DIGEST:(position + 1) * CONTENT_DIGEST]))


@dataclass
class ShareParse:
    """What a share read from its records' files; sent to the parent before the share renders.

    Record by record in the order of the share's ``parse`` lists, not by
    slug and path: the parent keys them with the slugs it already holds
    (see ``records``). Sent with their own slugs and paths, the parent took
    in a copy of every one: about 140 bytes a record.
    """

    parsed: dict[str, list[bytes | None]] = field(default_factory=dict)  # kind -> field digests (None: not parsed)
    sources: dict[str, FileEntries] = field(default_factory=dict)  # kind -> the state entry of each one's file
    references: list[tuple] = field(default_factory=list)  # of the records parsed (loader.find_references)
    errors: list[tuple[str, int, int, str]] = field(default_factory=list)

    def add(self, kind: str, digests: bytes | None, entry: tuple[int, int, bytes]) -> None:
        """The next record of ``kind``: its field digests (None: not parsed) and its file's entry."""
        self.parsed.setdefault(kind, []).append(digests)
        self.sources.setdefault(kind, FileEntries()).append(entry)

    def extend(self, part: ShareParse) -> None:
        """Take in the part that follows this one (see parse_share)."""
        for kind, digests in part.parsed.items():
            self.parsed.setdefault(kind, []).extend(digests)
            self.sources.setdefault(kind, FileEntries()).extend(part.sources[kind])
        self.references += part.references
        self.errors += part.errors

    def count(self) -> int:
        """Records in this part."""
        return sum(map(len, self.parsed.values()))

    def records(self, share: Share) -> Iterator[tuple[str, str, bytes]]:
        """(kind, slug, field digests) of each record parsed, the slugs the share's."""
        for kind, _, slug, digests in self._parsed(share):
            yield kind, slug, digests

    def entries(self, share: Share) -> Iterator[tuple[str, str, tuple[int, int, bytes]]]:
        """(kind, slug, state entry of its file) of each record parsed."""
        for kind, position, slug, _ in self._parsed(share):
            yield kind, slug, self.sources[kind][position]

    def _parsed(self, share: Share) -> Iterator[tuple[str, int, str, bytes]]:
        """(kind, position in the share's list, slug, field digests) of each record parsed."""
        for kind, digests in self.parsed.items():
            for position, (slug, found) in enumerate(zip(share.parse.get(kind, ()), digests)):
                if found is not None:
                    yield kind, position, slug, found


@dataclass
class ShareResult:
    # (url, file, owner, dependencies, links) of the pages not yet handed over (see render_share)
    pages: list[tuple[str, str, Any, tuple[str, ...], tuple[str, ...]]] = field(default_factory=list)
    deferred: list[tuple[str, Any]] = field(default_factory=list)  # (url, owner)
    failure: str | None = None
    read: dict[str, bytes] = field(default_factory=dict)  # source -> digest of what was read


# Takes a batch of rendered pages, each (url, file, owner, dependencies, links).
TakePages = Callable[[list[tuple[str, str, Any, tuple[str, ...], tuple[str, ...]]]], None]


def parse_share(job: Job, share: Share, send_part: Callable[[ShareParse], None] | None = None,
                ) -> tuple[ShareParse, dict[str, LazyRecords]]:
    """Read this share's records: what the parent needs, and the collections to render with.

    The parent gets each record's field digests, never its data; this
    process keeps the encoded records it parsed, marshalled (about 160 bytes
    a user instead of 1 KB of objects, see PackedRecords), and decodes one
    when a page asks for it. A complete share parses nothing up front: a
    page that reads a record has its file parsed then (see _file_loader).
    With ``send_part``, what the parent needs goes to it PARSE_PART records at
    a time, and the result holds the rest: held whole until the parse's end,
    it was 35 MB more in each record worker at a million users, just as the
    listing round starts.
    """
    result = ShareParse()
    collections = {}
    racy_after = racy_cutoff()
    context = parse_context(job.site, job.base_url or job.settings.base_url)
    packed_by_kind: dict[str, PackedRecords] = {}
    for kind, collection in job.site.collections.items():
        schema = schema_of(collection.model, job.site)
        if share.complete:
            collections[kind] = LazyRecords(ListedSlugs(share.listed[kind]), _file_loader(job, kind, schema, context))
            continue
        packed = packed_by_kind[kind] = PackedRecords()
        for slug in share.parse.get(kind, ()):
            if send_part and result.count() >= PARSE_PART:
                send_part(result)
                result = ShareParse()
            source = record_key(kind, slug)
            path = job.root / source
            try:
                data, stat = _read_record_file(path, source)  # read once: for the state and for the parser
                values = schema.encode(load_record(schema, path, job.root, context, data))
            except ContentError as exc:
                result.errors.append((exc.path, exc.line, exc.column, exc.message))
                result.add(kind, None, UNREAD)
                continue
            packed.add(slug, marshal.dumps(values))
            result.add(kind, field_digests(values), source_entry(*change_stamp(stat), digest(data),
                                                                racy_after))
        packed.index()
        collections[kind] = LazyRecords(packed, functools.partial(_decode, schema, packed))
    if not share.complete:
        result.references = find_references(job.site, packed_by_kind, encoded=True)
    return result, collections


class PackedRecords:
    """A share's records, marshalled one after the other into one buffer: slug -> encoded values.

    One large block, outside Python's arenas for small objects: a bytes
    object a record, each allocated among the parse's short-lived objects,
    kept those arenas mapped after the parse was sent, and a record worker
    held about 380 MB at a million users (see docs/speed.md).

    A record is found by its slug without a dictionary of them (37 MB in each
    record worker at a million users): a share's slugs come in file-name
    order, so a binary search finds one, and pages read records in that
    order too, so the one after the last found is tried first. A share whose
    slugs are not in that order (none is planned so) gets the dictionary.
    """

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.ends = array("Q")  # where each record ends in the buffer
        self.slugs: list[str] = []
        self._last_key = ""  # the file name of the last slug added, while they come in order
        self._positions: dict[str, int] | None = None  # only for slugs that came out of order
        self._next = 0  # where the next slug looked up probably is

    def add(self, slug: str, data: bytes) -> None:
        self.buffer += data
        self.ends.append(len(self.buffer))
        self.slugs.append(slug)
        if self._positions is None:
            key = record_order(slug)
            if key <= self._last_key:
                self._positions = {}  # made by index(), once every record is in
            self._last_key = key

    def index(self) -> None:
        """Ready the lookups once every record is in (so that their objects are not among the parse's)."""
        if self._positions is not None:
            self._positions = dict(zip(self.slugs, range(len(self.slugs))))

    def position(self, slug: str) -> int:
        """Where ``slug`` is among the records; KeyError when it is not one of them."""
        if self._positions is not None:
            return self._positions[slug]
        slugs, at = self.slugs, self._next
        if not (at < len(slugs) and slugs[at] == slug):
            at = bisect.bisect_left(slugs, record_order(slug), key=record_order)
            if not (at < len(slugs) and slugs[at] == slug):
                raise KeyError(slug)
        self._next = at + 1
        return at

    def values_at(self, position: int) -> tuple:
        start = self.ends[position - 1] if position else 0
        return marshal.loads(memoryview(self.buffer)[start:self.ends[position]])

    def __contains__(self, slug: object) -> bool:
        try:
            self.position(slug)  # type: ignore[arg-type]
        except (KeyError, TypeError):
            return False
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(self.slugs)

    def __len__(self) -> int:
        return len(self.slugs)

    def items(self) -> Iterator[tuple[str, tuple]]:
        """Each record's encoded values, unmarshalled one at a time (for find_references)."""
        return ((slug, self.values_at(position)) for position, slug in enumerate(self.slugs))


def _decode(schema: Any, packed: PackedRecords, slug: str) -> Any:
    return schema.decode(slug, packed.values_at(packed.position(slug)))


def _read_record_file(path: Path, source: str) -> tuple[bytes, os.stat_result]:
    """A record's file (``source`` as errors name it) and its stat; one that cannot be read is a ContentError."""
    try:
        return read_file(path)
    except OSError as exc:
        raise ContentError(source, 1, 1, f"cannot read: {exc.strerror}") from None


def _file_loader(job: Job, kind: str, schema: Any, context: Any) -> Callable[[str], Any]:
    """Parse a record's file when a page reads the record, noting the version read (as for templates)."""
    def load(slug: str) -> Any:
        source = record_key(kind, slug)
        path = job.root / source
        data, _ = _read_record_file(path, source)
        note_read(current_app.extensions.get(READ_LOG), source, data)
        return load_record(schema, path, job.root, context, data)

    return load


def render_share(job: Job, share: Share, collections: dict[str, LazyRecords],
                 tick: Callable[[], None], deliver: TakePages) -> ShareResult:
    """Freeze this share's URLs with the records at hand, noting each page's dependencies.

    Pages go to ``deliver`` in batches as they are rendered; the result
    holds the last ones.
    """
    result = ShareResult()
    if not (share.urls or share.records):
        return result
    recorder = Recorder()
    content = TrackedContent(job.settings, {kind: TrackedRecords(kind, records, recorder, complete=share.complete,
                                                                 listed=share.listed[kind])
                                            for kind, records in collections.items()}, recorder)
    app = create_app(job.site, content, base_url=job.base_url, config=freeze_config(job.tree))
    app.config["FREEZER_BASE_URL"] = app.config["SITE_BASE_URL"]
    app.jinja_env.bytecode_cache = StagedTemplateCache(job.templates, job.staged_templates)
    app.extensions[READ_LOG] = result.read  # the versions of templates and static files rendered with
    track_app(app, recorder)
    settle_template_globals(app.jinja_env)
    freezer = ShareFreezer(app, share.records, share.urls)
    with cyclic_gc(True):
        while True:
            try:
                _freeze_into(freezer, share.owners, recorder, result, tick, deliver)
                return result
            except Deferred:  # the rest of the share continues below
                result.deferred.append((freezer.current_url,
                                        freezer.owner or share.owners.get(freezer.current_url)))
            except SiteError as exc:
                result.failure = exc.format_message()
            except ContentError as exc:  # a record's file, read for a page, was broken after the scan
                result.failure = str(exc)
            except FrozenFlaskWarning as exc:
                result.failure = f"freeze failed: {exc}"
            except Exception as exc:
                where = f" (while freezing {freezer.current_url})" if freezer.current_url else ""
                described = describe_template_error(exc, job.root / "templates")
                if described is None and isinstance(exc, OSError):  # a full disk names the disk, not the page
                    described = describe_os_error(exc, job.dest or job.tree, job.root)
                result.failure = (described or f"{type(exc).__name__}: {exc}") + where
            if result.failure:
                return result


def settle_template_globals(env: Any) -> None:
    """Give each template its globals as a plain dict, not Jinja's ChainMap over the environment's.

    Jinja copies a template's globals into every context it renders with:
    ``dict()`` of a ChainMap of the 13 globals took 5.3 µs, of a dict 0.1 µs
    (once or twice a page). The ChainMap is there to show globals added
    later; a worker adds none once its app is made.
    """
    settled = dict(env.globals)
    env.make_globals = lambda own: {**settled, **own} if own else dict(settled)


def _freeze_into(freezer: ShareFreezer, owners: dict, recorder: Recorder, result: ShareResult, tick,
                 deliver: TakePages) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", FrozenFlaskWarning)
        pages = freezer.freeze_pages()
        while True:
            recorder.start()
            try:
                url, file = next(pages)
            except StopIteration:
                recorder.stop()
                return
            result.pages.append((url, file, freezer.owner or owners.get(url), recorder.stop(), freezer.links))
            if len(result.pages) >= PAGES_BATCH:
                deliver(result.pages)
                result.pages = []
            tick()


# ---------------------------------------------------------------- running shares in processes

# Given what every share of a round parsed, the shares of the next round (it may raise to stop).
PlanNext = Callable[[list[ShareParse]], list[Share]]


def run_rounds(job: Job, first: list[Share], plan_next: PlanNext, progress: Callable[[int], None],
               take_pages: TakePages, pool: Pool | None = None,
               ) -> tuple[list[ShareParse], list[ShareResult], list[ShareResult]]:
    """Render ``first``, then the shares ``plan_next`` makes from what they parsed.

    With several workers the next round starts as soon as every worker has
    parsed its records, while they still render theirs: the pages that list
    every record then take the cores the record pages leave free, instead of
    coming after them. Each share runs in its own forked process, or in this
    one when there is only one first share. The next round's first worker is
    forked with the first ones (or taken from ``pool``), and waits for its
    share: forked later, it would count again what this process has taken
    in from the parses.
    Rendered pages reach ``take_pages`` in batches as the shares go.
    """
    if len(first) == 1:
        return _run_here(job, first[0], plan_next, progress, take_pages)
    with _Workers(job, progress, take_pages, pool) as workers:
        for share in first:
            workers.start(share, reports_parse=True)
        waiting = workers.reserve()
        parses = workers.wait_for_parses()
        second = plan_next(parses)
        workers.hand_over(waiting, second[0] if second else None)
        for share in second[1:]:
            workers.start(share, reports_parse=False)
        results = workers.wait_for_results()
    return parses, results[:len(first)], results[len(first):]


def run_shares(job: Job, shares: list[Share], progress: Callable[[int], None],
               take_pages: TakePages) -> list[ShareResult]:
    """Render shares that need no parsing, each in its own process (in this one when there is only one)."""
    if len(shares) == 1:
        return [render_share(job, shares[0], parse_share(job, shares[0])[1], _Ticks(progress), take_pages)]
    with _Workers(job, progress, take_pages, None) as workers:
        for share in shares:
            workers.start(share, reports_parse=False)
        return workers.wait_for_results()


def _run_here(job: Job, share: Share, plan_next: PlanNext, progress: Callable[[int], None],
              take_pages: TakePages) -> tuple[list[ShareParse], list[ShareResult], list[ShareResult]]:
    parsed, collections = parse_share(job, share)
    second = plan_next([parsed])
    ticks = _Ticks(progress)
    result = render_share(job, share, collections, ticks, take_pages)
    return [parsed], [result], (run_shares(job, second, lambda done: progress(ticks.done + done), take_pages)
                                if second else [])


class _Ticks:
    """Counts the pages rendered in this process and reports the count."""

    def __init__(self, progress: Callable[[int], None]):
        self.progress, self.done = progress, 0

    def __call__(self) -> None:
        self.done += 1
        self.progress(self.done)


class Pool:
    """Worker processes that wait for their work on a pipe; more are forked when asked for.

    A clean freeze forks its workers before it scans the sources: forked
    later, each worker holds the scan and the plan the parent made meanwhile
    (about 370 bytes a record), and a sum of RSS counts them once per process.
    """

    def __init__(self, site: Site, count: int = 0):
        import multiprocessing  # here: a freeze that renders in one process never needs it

        self.site = site
        self.context = multiprocessing.get_context("fork")
        self.idle: list[_Waiting] = []
        try:
            for _ in range(count):
                self.idle.append(self._fork())
        except BaseException:  # e.g. no descriptor left for the next one's pipes: the ones forked end now
            self.__exit__(None, None, None)
            raise

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        for waiting in self.idle:
            with contextlib.suppress(BrokenPipeError):  # gone already (killed): nothing to tell it
                waiting.work.send(False)  # not needed: it ends without a word
            waiting.work.close()
            waiting.results.close()
            waiting.process.join()
        self.idle = []

    def take(self) -> _Waiting:
        return self.idle.pop(0) if self.idle else self._fork()

    def _fork(self) -> _Waiting:
        counter = self.context.RawValue("q", 0)
        ends: list[Any] = []  # closed at once if the fork fails (no descriptor left, say)
        try:
            work, handed = self.context.Pipe(duplex=False)
            ends += (work, handed)
            results, send = self.context.Pipe(duplex=False)
            ends += (results, send)
            process = self.context.Process(target=_waiting_worker, daemon=True,
                                           args=(self.site, work, send, counter, [handed, results, *_PARENT_ENDS]))
            blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})  # held for this process until
            try:  # the fork is done; the worker ignores it before it lets it in (see _waiting_worker)
                process.start()
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        except BaseException:
            for end in ends:
                end.close()
            raise
        work.close()
        send.close()
        _PARENT_ENDS.update((handed, results))
        return _Waiting(process, counter, handed, results)


# This process's ends of its workers' pipes. Each worker closes its copies of them, its own
# pipes' included: held open there, a pipe told a worker neither that the parent was gone nor
# that no one would read, and the workers of a killed freeze waited for ever.
_PARENT_ENDS: weakref.WeakSet = weakref.WeakSet()


class _Waiting(NamedTuple):
    process: Any
    counter: Any  # pages rendered, shared with the process
    work: Any  # where its share goes
    results: Any  # where what it parsed and rendered comes from


class _Workers:
    """Forked processes, one per share, each sending what it parsed and then what it rendered."""

    def __init__(self, job: Job, progress: Callable[[int], None], take_pages: TakePages, pool: Pool | None):
        self.pool = pool or Pool(job.site)
        self.progress, self.take_pages = progress, take_pages
        # The job as sent to a worker: the site is the one the worker was forked with, the settings encoded.
        self.job = replace(job, site=None, settings=settings_schema(job.site).encode(job.settings))
        self.counters: list[Any] = []
        self.processes: list[Any] = []
        self.receivers: dict[Any, int] = {}
        self.reserved: dict[Any, int] = {}  # the work pipe of each worker reserved, to its index
        self.pipes: list[Any] = []  # every pipe to and from its workers
        self.parses: dict[int, ShareParse] = {}
        self.parts: dict[int, ShareParse] = {}  # what a worker still parsing sent so far
        self.reporting = 0  # workers that send what they parsed
        self.results: dict[int, ShareResult] = {}

    def __enter__(self) -> _Workers:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        for process in self.processes:
            if process.is_alive() and exc_info[0] is not None:
                process.terminate()
            process.join()
            process.close()
        # Their pipes closed now, not when a failure's traceback lets go of them: the freeze then
        # removes its staging, which needs descriptors when the failure was running out of them.
        for connection in self.pipes:
            connection.close()

    def start(self, share: Share, *, reports_parse: bool) -> None:
        """Have a worker render ``share``; with ``reports_parse`` it sends what it parsed before it renders."""
        self.hand_over(self.reserve(), share, reports_parse=reports_parse)

    def reserve(self) -> Any:
        """A worker for a share to come (see hand_over), taken now, before this process takes in more."""
        waiting = self.pool.take()
        self.receivers[waiting.results] = self.reserved[waiting.work] = len(self.processes)
        self.pipes += (waiting.work, waiting.results)
        self.processes.append(waiting.process)
        self.counters.append(waiting.counter)
        return waiting.work

    def hand_over(self, work: Any, share: Share | None, *, reports_parse: bool = False) -> None:
        """Send a reserved worker its share (None: nothing to do)."""
        self.reporting += share is not None and reports_parse
        try:
            work.send(share and (self.job, share, reports_parse))
        except BrokenPipeError:  # killed while it waited
            raise _ended_early(self.processes[self.reserved[work]]) from None
        finally:
            work.close()

    def wait_for_parses(self) -> list[ShareParse]:
        while len(self.parses) < self.reporting:
            self._receive()
        return [self.parses[index] for index in sorted(self.parses)]

    def wait_for_results(self) -> list[ShareResult]:
        while self.receivers:
            self._receive()
        return [self.results[index] for index in range(len(self.processes))]

    def _receive(self) -> None:
        from multiprocessing.connection import wait

        for ready in wait(list(self.receivers), timeout=PROGRESS_SECONDS):
            index = self.receivers[ready]
            try:
                outcome, value = ready.recv()
            except EOFError:
                raise _ended_early(self.processes[index]) from None
            if outcome == "failure":  # the one line the user would see from a freeze in one process
                raise SiteError(value)
            if outcome == "crash":  # a bug: its traceback, from the worker
                raise RuntimeError(f"a freeze worker failed:\n{value}")
            if outcome == "parsed-part":
                self.parts.setdefault(index, ShareParse()).extend(value)
            elif outcome == "parsed":
                self.parses[index] = self.parts.pop(index, ShareParse())
                self.parses[index].extend(value)
            elif outcome == "pages":
                self.take_pages(value)
            else:
                self.results[index] = value
                del self.receivers[ready]
        self.progress(sum(counter.value for counter in self.counters))


def _ended_early(process: Any) -> SiteError:
    """A worker gone without its answer, killed most likely: one line, not a traceback."""
    process.join(timeout=5)  # for its exit code
    code = process.exitcode
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        why = " (the system does that when memory runs out: fewer --jobs use less)" if -code == signal.SIGKILL else ""
        how = f"was killed by {name} before it finished{why}"
    else:
        how = f"ended with exit code {code} before it finished"
    return SiteError(f"a freeze worker {how}; the build is unchanged")


def give_back_free_memory() -> None:
    """Hand the C heap's free pages back to the system, where the C library can (glibc's malloc_trim).

    A parse leaves many freed blocks between the ones kept; Python gives back only whole arenas.
    """
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # another C library
        pass


def _waiting_worker(site: Site, work: Any, send: Any, counter: Any, parent_ends: list[Any]) -> None:
    """Wait for (job, share, reports_parse) and do it; None: nothing to do, said so; False: not needed.

    Ctrl-C reaches every process of the terminal's group: a worker leaves it
    to the freeze, which stops its workers and says "Aborted!" once, instead
    of each printing where its KeyboardInterrupt found it.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the freeze's own handler is for the freeze (freeze_command)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # blocked by Pool._fork until now
    for parent_end in parent_ends:  # copied by the fork (see _PARENT_ENDS): the parent's exit ends the wait
        parent_end.close()
    try:
        message = work.recv()
    except EOFError:  # the parent is gone
        message = False
    work.close()
    try:
        if message is None:
            send.send(("ok", ShareResult()))
        elif message:
            job, share, reports_parse = message
            _worker(replace(job, site=site, settings=settings_schema(site).decode("site", job.settings)),
                    share, reports_parse, counter, send)
    except BrokenPipeError:  # the parent was killed: no one to tell, and no traceback on its terminal
        pass
    send.close()


def _worker(job: Job, share: Share, reports_parse: bool, counter: Any, send: Any) -> None:
    def tick() -> None:
        counter.value += 1

    try:
        parsed, collections = parse_share(job, share, (lambda part: send.send(("parsed-part", part)))
                                          if reports_parse else None)
        if reports_parse:
            send.send(("parsed", parsed))
            if parsed.errors:  # the freeze stops; nothing to render
                send.send(("ok", ShareResult()))
                return
        del parsed  # the parent has it: not kept while rendering
        give_back_free_memory()
        send.send(("ok", render_share(job, share, collections, tick, lambda pages: send.send(("pages", pages)))))
    except SiteError as exc:
        send.send(("failure", exc.format_message()))
    except MemoryError:
        send.send(("failure", "a freeze worker ran out of memory; fewer --jobs use less"))
    except (ContentError, OSError) as exc:
        send.send(("failure", str(exc) if isinstance(exc, ContentError) else describe_os_error(exc, job.dest or job.tree, job.root)))
    except BaseException:
        send.send(("crash", traceback.format_exc()))
    finally:
        send.close()
