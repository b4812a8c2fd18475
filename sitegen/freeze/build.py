"""Freeze the site into static files with Frozen-Flask: safely, in parallel, incrementally.

Frozen-Flask renders and writes each page (sitegen/render.py, one Freezer per
worker process); this module decides what to render and keeps the promises:

- only pages whose inputs changed since the last freeze are rendered
  (sitegen/incremental.py keeps what each page was built from), and the
  result is byte-identical to a clean freeze;
- a freeze works in a staging folder and changes build/ only once every page
  succeeded; a crash mid-way never leaves build/ or the state half-updated;
- it only writes into a folder that is empty or that it made itself.

The plan, in rounds of workers: first each worker parses its run of the
records to render or to check (in file-name order) and renders their pages,
and the listing pages that show only records of its run; as soon as every
record is parsed, more workers render the pages that list records (the home
page, listing pages dirtied by an edited field, the sitemap) and the rest,
beside the first ones, reading from its file each record a page reads; last,
any page that turned out to need records its worker did not hold. No
process holds every record's data: the parent gets a digest of each field
(to tell which listing pages an edit dirties), and the state keeps only
those. Flask is imported only when some page has to be rendered.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from ..content.model import base_path_of
from ..errors import ContentError, ContentErrors, SiteError, describe_os_error
from ..site import Site, load_site
from . import incremental
from .dependencies import ANY_TEMPLATE, SITE, field_key, members_key, record_key, static_link_key
from .incremental import MARKER, BuildFolders, State
from .pages import Pages

if TYPE_CHECKING:  # render imports Flask, which a freeze with nothing to do never needs
    from .render import Pool

# Below this many pages and files to parse, one process is faster than forking.
PARALLEL_MIN = 64
PROGRESS_SECONDS = 0.1


class FreezeResult(NamedTuple):
    pages: int
    seconds: float
    destination: Path
    rendered: int = 0
    removed: int = 0

    def summary(self) -> str:
        """The line ``python site.py freeze`` ends with."""
        return (f"Froze {self.pages} pages into {self.destination} in {self.seconds:.2f} s "
                f"({self.rendered} rendered, {self.removed} removed)")


def default_jobs() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def check_destination(dest: Path, root: Path) -> None:
    """Refuse to replace anything that is not one of our own builds."""
    sources = [root / name for name in ("content", "templates", "static")]
    if root.is_relative_to(dest) or any(dest.is_relative_to(source) for source in sources):
        raise SiteError(f"refusing to freeze into {dest}: it holds the project's own files")
    if dest.exists() and not dest.is_dir():
        raise SiteError(f"refusing to freeze into {dest}: it is a file")
    through = next((parent for parent in dest.parents if parent.exists()), None)
    if through is not None and not through.is_dir():
        raise SiteError(f"refusing to freeze into {dest}: {through} is a file")
    if dest.is_dir() and any(dest.iterdir()) and not (dest / MARKER).is_file():
        raise SiteError(
            f"refusing to freeze into {dest}: it is not empty and was not made by a freeze "
            f"(no {MARKER} file); empty it or choose another --dest"
        )


def freeze_site(
    site: Site | Path,
    dest: Path,
    *,
    base_url: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    jobs: int | None = None,
    clean: bool = False,
    scan: Callable[..., dict[str, tuple[int, int] | None]] = incremental.scan_sources,
    folders: Callable[[Path], BuildFolders] = BuildFolders,
) -> FreezeResult:
    """Freeze ``site`` (or the site.py in that folder) into ``dest``, rendering only what changed unless ``clean``.

    ``scan`` stands for scan_sources and ``folders`` for BuildFolders: a process
    that freezes again and again (sitegen/freeze/watch.py) passes its own,
    which know from file events what changed and keep the last state in memory.
    """
    started = time.perf_counter()
    if not isinstance(site, Site):
        site = load_site(site)
    root, dest = site.root, Path(dest).resolve()
    check_destination(dest, root)
    build_folders = folders(dest)
    try:
        with incremental.cyclic_gc(False), build_folders.locked(), contextlib.ExitStack() as ending:
            return _freeze(site, dest, build_folders, started, base_url, progress, jobs, clean, scan, ending)
    except OSError as exc:  # a full disk, a read-only or immutable folder: one line, never a traceback
        raise SiteError(describe_os_error(exc, dest, root)) from None


def _freeze(site: Site, dest: Path, folders: BuildFolders, started: float, base_url: str | None,
            progress: Callable[[int, int], None] | None, jobs: int | None, clean: bool,
            scan: Callable[..., dict[str, tuple[int, int] | None]], ending: contextlib.ExitStack) -> FreezeResult:
    root = site.root
    folders.recover()
    expected = incremental.fingerprint(root, base_url)
    stored = None if clean or not (dest / MARKER).is_file() else folders.load_state(expected)
    jobs = jobs or default_jobs()
    pool = None
    if stored is None and jobs > 1:  # every page is rendered: the workers, forked before the scan (see Pool)
        from . import render

        pool = ending.enter_context(render.Pool(site, jobs + 1))
    scanned = scan(root, list(site.collections), stat_records=stored is not None)
    changes = incremental.compare_sources(root, scanned, stored.sources if stored else {},
                                          hash_content=stored is not None, moved=stored.moved() if stored else None)
    del scanned  # in changes.sources now; its table alone is 40 MB at a million records
    if stored is not None and not changes.any():
        folders.save_sources(stored, changes.sources)  # files touched but not edited: their new times
        return FreezeResult(stored.page_count, time.perf_counter() - started, dest)
    previous = stored.load() if stored else None
    if stored is not None and previous is None:  # damaged past its head: as if there were no state
        return _freeze(site, dest, folders, started, base_url, progress, jobs, True, scan, ending)
    try:
        folders.start_staging()
        build = Build(site, folders, base_url, expected, previous, changes, jobs, _throttled(progress), pool)
        state, rendered, deleted = build.run()
        written: list[str] = []
        if not dest.exists():  # the staged tree becomes build/ in one rename: no file to journal
            (folders.tree / MARKER).write_text(incremental.MARKER_TEXT)
        else:  # a list of every file of a first freeze: 80 MB at a million pages, made only when needed
            written = list(rendered.files())
            if stored is None:
                deleted = folders.files_not_written(written)
        del rendered
        stored = previous = None  # its sources too, before the new state is dumped (see Build.drop_previous)
        build.drop_previous()
        folders.mark_ready(state, written, deleted)
    except BaseException:
        folders.discard_staging()
        raise
    folders.apply_commit()  # a failure puts build/ back; if this is interrupted, the next freeze finishes it
    return FreezeResult(len(state.pages), time.perf_counter() - started, dest,
                        rendered=build.rendered, removed=len(deleted))


def forget_fields_of_unknown_versions(sources: incremental.Sources, records: dict[str, dict[str, bytes]]) -> None:
    """A record read in two versions (edited during the freeze) keeps no field digests.

    Its source entry is then unknown (keep_versions_rendered), so the next
    freeze parses it again; with no digests every field counts as
    changed, and every listing page showing it is rendered again, even
    if the file went back to the version the digests were taken from.
    """
    # From the few unknown entries, not from every record: 6 ms instead of 40 at 100,000 users.
    for kind, slug in edited_records({path for path, entry in sources.items() if entry[2] == b"" and entry[0] == -1}):
        if slug in records.get(kind, ()):
            records[kind][slug] = incremental.UNKNOWN_FIELDS


def dirty_slugs(kind: str, names: list[str], owned: set[str], touched: set[tuple[str, str]]) -> set[str]:
    """The slugs among ``names`` whose pages to render: their record owns no page yet, or is among the
    ``touched`` records (kind, slug): a page of theirs depends on something changed, or their file
    changed. Set operations over the collection, then a loop over what was touched only: at 100,000
    users 13-15 ms instead of 37-42 for a test of every slug."""
    found = set(names)
    dirty = found - owned
    dirty.update(slug for touched_kind, slug in touched if touched_kind == kind and slug in found)
    return dirty


def edited_records(changed: set[str]) -> set[tuple[str, str]]:
    """(kind, slug) of each record whose file is among the ``changed`` sources (record_key's inverse)."""
    edited = set()
    for path in changed:
        top, _, rest = path.partition("/")
        kind, _, name = rest.partition("/")
        if top == "content" and name.endswith(".yaml") and "/" not in name:
            edited.add((kind, name[: -len(".yaml")]))
    return edited


def _throttled(progress: Callable[[int, int], None] | None) -> Callable[[int, int], None]:
    last = 0.0

    def report(done: int, total: int) -> None:
        nonlocal last
        now = time.monotonic()
        if progress and (now - last >= PROGRESS_SECONDS or done == total):
            last = now
            progress(done, total)

    return report


def _raise_first_failure(results: list[Any]) -> None:
    """A worker's failure (already a one-line message) ends the freeze."""
    for result in results:
        if result.failure:
            raise SiteError(result.failure)


class Build:
    """One freeze that has something to render: which pages, in which workers, and the new state."""

    def __init__(self, site: Site, folders: BuildFolders, base_url: str | None, fingerprint: bytes,
                 previous: State | None, changes: incremental.SourceChanges, jobs: int,
                 progress: Callable[[int, int], None], pool: Pool | None = None):
        self.site, self.root = site, site.root
        self.folders, self.base_url, self.fingerprint = folders, base_url, fingerprint
        self.previous, self.changes, self.jobs, self.progress = previous, changes, jobs, progress
        self.pool = pool  # workers forked before the scan, if any
        self.plan: tuple | None = None  # render.plan_pages's, kept in the state for the next freeze
        self.old_pages = previous.pages if previous else Pages()
        self.old_records = previous.records if previous else {}
        self.old_references = previous.references if previous else {}
        self.rendered = 0
        self.total = 0  # pages to render, as far as known yet
        self.new_pages = Pages()  # rendered by this freeze, as the workers send them
        self.shared: dict[tuple[str, ...], tuple[str, ...]] = {}  # one tuple for equal dependencies or links

    def run(self) -> tuple[State, Pages, list[str]]:
        from . import render  # Flask, only now that something has to be rendered
        from .linkcheck import broken_links  # and the HTML parser (3 ms)

        settings = self._settings()
        slugs, name_errors = self._slugs()
        self.plan = render.plan_pages(self.site, settings, self.base_url, self.folders.tree,
                                      {kind: len(names) for kind, names in slugs.items()}, self._last_plan())
        _, others, listings = self.plan
        changed = self._changed_files()
        job = render.Job(self.root, self.base_url, self.site, settings, self.folders.tree,
                         self.folders.templates, self.folders.staged_templates, self.folders.dest)

        # Round 1: each worker parses its run of the records and renders their pages, and the listing
        # pages already known to be dirty (a template, the settings, a record added) that show only them.
        # One pass over the old pages, a set operation for each distinct tuple of dependencies. A record
        # page depends on its own file (its owner's).
        owners = self.old_pages.owned()
        # With no page built yet, every record's pages are rendered: the records whose files changed (all
        # of them, 2.3 s to find and merge at a million) matter then only if name errors leave none to render.
        edited = edited_records(changed) if self.old_pages or name_errors else set()
        touched = edited | {owner for _, owner in self.old_pages.depending_on(changed) if owner}
        dirty = {kind: set() if name_errors  # kind -> slugs whose pages to render
                 else dirty_slugs(kind, names, owners.get(kind, set()), touched)
                 for kind, names in slugs.items()}
        early = {} if name_errors else {
            kind: {number: url for number, url in enumerate(urls) if self.old_pages.dirty(url, changed)}
            for kind, urls in listings.items()}
        self.total = sum(map(len, dirty.values())) + sum(map(len, early.values()))
        records: dict[str, dict[str, bytes]] = {}
        references: dict[str, dict[str, list]] = {}

        def plan_listing_round(parses: list[Any]) -> list[Any]:
            """Round 2, started once every record is parsed: the pages that list records and the rest."""
            errors = [ContentError(*error) for parsed in parses for error in parsed.errors]
            if name_errors or errors:
                raise ContentErrors(name_errors + errors)
            parsed_now = self._take_parses(first, parses)
            records.update(self._merge_records(slugs, parsed_now))
            references.update(self._merge_references(records, parsed_now, parses))
            listed_changes = self._changed_fields(records, parsed_now)
            del parsed_now  # in records now: not held twice, nor by the worker forked next
            for parsed in parses:  # its digests, the very ones of records, say which entries to take (_take_entries)
                parsed.references = []
            render.give_back_free_memory()
            errors = self._reference_errors(records, references)
            if errors:
                raise ContentErrors(errors)
            changed.update(listed_changes)
            relisted = {}
            if listed_changes:  # record pages that also list records; round 1 did (or deferred) the dirty ones
                # The test that rejects almost every page first: 86 -> 28 ms at 100,000 users.
                relisted = {url: owner for url, owner in self.old_pages.depending_on(changed)
                            if owner and owner[1] not in dirty[owner[0]] and owner[1] in records[owner[0]]}
            listed_early = {url for pages in early.values() for url in pages.values()}
            second = list(relisted) + [url for url in others
                                       if url not in listed_early and self.old_pages.dirty(url, changed)]
            self.total += len(second)
            # Beside the first round's workers, one more process is enough (and costs less memory).
            return self._listing_shares(render, second, relisted, slugs, 1 if len(first) > 1 else self.jobs)

        first = self._record_shares(render, slugs, dirty, early, edited)
        if not self.old_pages:  # no page to list again (plan_listing_round): every slug, 40 MB at a million
            dirty.clear()
        if self.previous is None:  # every page is rendered: the sources changed and added (all) tell nothing more
            changed.clear()
            self.changes.added.clear()
        parses, first_results, second_results = render.run_rounds(
            job, first, plan_listing_round,
            lambda done: self.progress(done, self.total), self._take_pages, self.pool)
        results = first_results + second_results
        _raise_first_failure(results)

        # Round 3: pages that needed records their worker did not hold (round 1 deferred them).
        deferred = dict(deferred for result in first_results for deferred in result.deferred)
        if deferred:
            done = len(self.new_pages) + sum(len(result.pages) for result in results)
            self.total += len(deferred)
            results += self._run(render, job, self._listing_shares(render, list(deferred), deferred, slugs,
                                                                   self.jobs), done, self.total)

        for result in results:
            self._take_pages(result.pages)
            result.pages = []  # now in new_pages
        new_pages, self.new_pages = self.new_pages, Pages()
        pages = new_pages
        if self.old_pages:
            pages = self.old_pages.kept(records, others)
            pages.update(new_pages.items())
        if self.previous is None or any(path.startswith("content/") for path in self.changes.added):
            render.check_collisions(pages.files())
        deleted = self.old_pages.files_gone_from(pages)
        # The last build had no broken link (one stops the freeze before its commit): unless a file is
        # gone, only the pages rendered now can have one. At 10,000 pages, 1 ms instead of 12.
        checked = None if self.previous is None or deleted else list(new_pages)
        broken = broken_links(pages, self.root, base_path_of(self.base_url or settings.base_url), checked)
        if broken:
            raise SiteError("\n".join(broken))
        self.rendered = len(new_pages)
        self._take_entries(first, parses)
        sources = self.changes.sources  # with the entries of the records the workers read
        incremental.keep_versions_rendered(self.root, sources, [result.read for result in results])
        forget_fields_of_unknown_versions(sources, records)
        state = State(self.fingerprint, sources, self._settings_schema().encode(settings), records, references,
                      pages, self.plan)
        return state, new_pages, deleted

    def _take_pages(self, batch: list[tuple[str, str, Any, tuple[str, ...], tuple[str, ...]]]) -> None:
        """Keep a batch of rendered pages as the state stores them, as they arrive.

        Without the page itself (its canonical link), most pages link to the
        same files, and without its own record (implied by its owner), most
        record pages read the same files: one shared tuple each, which the
        state then stores once (5.1 MB -> 4.7 MB at 10,000 pages for the links).
        A page of no record is kept whole, its tuples packed (see pages.py):
        kept here too, they would outlive the packing.
        """
        shared = self.shared
        for url, file, owner, dependencies, links in batch:
            if owner:
                own = record_key(*owner)
                dependencies = tuple(dependency for dependency in dependencies if dependency != own)
                links = tuple(sys.intern(link) for link in links if link != file)
                dependencies, links = shared.setdefault(dependencies, dependencies), shared.setdefault(links, links)
            else:
                links = tuple(link for link in links if link != file)
            self.new_pages[url] = (file, owner, dependencies, links)

    def drop_previous(self) -> None:
        """Let go of the last state, whose objects the new one shares.

        marshal notes every object referenced more than once, in case it is
        shared within what it dumps: with the last state still held, dumping
        the new one after a one-bio edit at 10,000 users took 25 ms instead of 16.
        """
        self.previous, self.old_pages, self.old_records, self.old_references = None, Pages(), {}, {}

    # ------------------------------------------------------------ what changed

    def _settings_schema(self) -> Any:
        from ..content.loader import settings_schema  # here: a freeze with nothing to do reads no settings

        return settings_schema(self.site)

    def _settings(self) -> Any:
        if self.previous and self.previous.site and SITE not in self.changes.changed:
            return self._settings_schema().decode("site", self.previous.site)
        from ..content.loader import load_content, load_settings

        try:
            return load_settings(self.site, self.root, self.base_url)
        except ContentError as exc:
            load_content(self.site, self.root, self.base_url)  # raises every content error at once
            raise ContentErrors([exc]) from None

    def _reference_errors(self, records: dict[str, dict[str, bytes]],
                          references: dict[str, dict[str, list]]) -> list[ContentError]:
        """References to records that do not exist, checked over every record (a deleted one breaks others)."""
        from ..content.loader import reference_errors

        return reference_errors(self.root, records, [reference for by_slug in references.values()
                                                     for found in by_slug.values() for reference in found])

    def _last_plan(self) -> tuple | None:
        """The last freeze's plan, unless a static file came or went (the plan lists every one)."""
        if self.previous is None or any(path.startswith("static/")
                                        for path in itertools.chain(self.changes.added, self.changes.removed)):
            return None
        return self.previous.plan

    def _slugs(self) -> tuple[dict[str, list[str]], list[ContentError]]:
        """The records of each kind in file-name order, and the errors in file names."""
        if self.previous and not any(path.startswith("content/")
                                     for path in itertools.chain(self.changes.added, self.changes.removed)):
            return {kind: list(records) for kind, records in self.old_records.items()}, []
        from ..content.loader import names_are_clean, record_paths

        names = {kind: sorted(path.rpartition("/")[2] for path in self.changes.sources
                              if path.startswith(f"content/{kind}/")) for kind in self.site.collections}
        if all(names_are_clean(found) for found in names.values()):
            return {kind: [name[: -len(".yaml")] for name in found] for kind, found in names.items()}, []
        paths, errors = record_paths(self.site, self.root)
        return {kind: [path.stem for path in found] for kind, found in paths.items()}, errors

    def _changed_files(self) -> set[str]:
        """The changed sources and the keys their changes imply, added to the scan's own set.

        Not a copy: it holds every record in a first freeze, and a copy was
        counted again in each worker forked from the parent.
        """
        changed = self.changes.changed
        if any(path.startswith("templates/") for path in changed):
            changed.add(ANY_TEMPLATE)
        for path in itertools.chain(self.changes.added, self.changes.removed):  # not a union: all, at first
            if path.startswith("static/"):
                changed.add(static_link_key(path[len("static/"):]))
        return changed

    def _changed_fields(self, records: dict[str, dict[str, bytes]],
                        parsed_now: dict[str, dict[str, bytes]]) -> set[str]:
        """Collection keys that changed: the list of records, and each field edited in each record.

        Only a record read again can have changed: the others are the last state's own digests
        (looking at every record took 50 ms of a one-bio edit at 100,000 users).
        """
        from ..content.loader import schema_of

        changed = set()
        for kind, new in records.items():
            old = self.old_records.get(kind, {})
            if list(old) != list(new):
                changed.add(members_key(kind))
            fields = schema_of(self.site.collections[kind].model, self.site).names
            for slug, digests in parsed_now.get(kind, {}).items():
                before = old.get(slug)
                if before is not None and before != digests:
                    changed.update(field_key(kind, slug, name)
                                   for name in incremental.changed_fields(before, digests, fields))
        return changed

    def _take_parses(self, shares: list[Any], parses: list[Any]) -> dict[str, dict[str, bytes]]:
        """The field digests of each record parsed now (kind -> slug -> digests)."""
        parsed_now: dict[str, dict[str, bytes]] = {kind: {} for kind in self.site.collections}
        for share, parsed in zip(shares, parses):
            for kind, slug, digests in parsed.records(share):
                parsed_now[kind][slug] = digests
        return parsed_now

    def _take_entries(self, shares: list[Any], parses: list[Any]) -> None:
        """The entries of the records' files put into the sources, once every page is rendered: kept packed
        in the parses until then, the parent held 180 MB less while the workers rendered a million users."""
        sources = self.changes.sources
        for share, parsed in zip(shares, parses):
            for kind, slug, entry in parsed.entries(share):
                sources[record_key(kind, slug)] = entry
            parsed.parsed, parsed.sources = {}, {}

    # ------------------------------------------------------------ sharing out the work

    def _record_shares(self, render: Any, slugs: dict[str, list[str]], dirty: dict[str, set[str]],
                       early: dict[str, dict[int, str]], edited: set[tuple[str, str]]) -> list[Any]:
        """Deal out the records to parse and the pages to render, in runs of the records in file-name order.

        A worker parses the records whose files changed, whose pages it
        renders, and those shown by the listing pages in ``early`` (listing
        page number - 1 -> URL); runs are cut only between listing pages,
        so the worker holding a listing page's records renders that page. ``edited`` (the records
        whose files changed) are parsed even when name errors leave nothing to render, to report
        their own errors too.
        """
        work = []  # (kind, position, slug) to parse
        for kind, names in slugs.items():
            per_page = self.site.collections[kind].per_page or len(names) or 1
            listed = early.get(kind, {})
            # One set test a record, the edited records' slugs found beforehand: at 100,000 users
            # 8-11 ms instead of 23-34 for a record_key and a test in the changed set each.
            wanted = dirty[kind] | {slug for edited_kind, slug in edited if edited_kind == kind}
            work += [(kind, position, slug) for position, slug in enumerate(names)
                     if slug in wanted or position // per_page in listed]
        count = self.jobs if len(work) + sum(map(len, dirty.values())) >= PARALLEL_MIN else 1
        shares = [render.Share({}, [], {}, {}, slugs, complete=False) for _ in range(count)]
        starts: list[dict[str, int]] = [{} for _ in range(count)]  # kind -> position of the first record parsed
        cuts = [self._cut(work, len(work) * index // count) for index in range(1, count)]
        share_index = 0
        for index, (kind, position, slug) in enumerate(work):
            while share_index < len(cuts) and index >= cuts[share_index]:
                share_index += 1
            share = shares[share_index]
            share.parse.setdefault(kind, []).append(slug)
            if slug in dirty[kind]:
                share.records.setdefault(kind, []).append(slug)
            per_page = self.site.collections[kind].per_page
            if per_page and position % per_page == 0 and position // per_page in early.get(kind, {}):
                share.urls.append(early[kind][position // per_page])
            starts[share_index].setdefault(kind, position)
        for kind, pages in early.items():  # an empty collection's one listing page has no record to go with
            if not slugs[kind] and 0 in pages:
                shares[0].urls.append(pages[0])
        for share, started in zip(shares, starts):
            share.listed = {kind: self._listed_window(render, names, share.parse.get(kind, []), started.get(kind, 0))
                            for kind, names in slugs.items()}
        return shares

    def _listed_window(self, render: Any, names: list[str], parsed: list[str], start: int) -> Any:
        """A collection's slugs as a share needs them: only its own run, when it parses a run of them
        (as in a first freeze), instead of all of them, 68 MB in each record worker at a million users."""
        return render.ListedWindow(len(names), start, parsed) if names[start:start + len(parsed)] == parsed else names

    def _cut(self, work: list[tuple[str, int, str]], index: int) -> int:
        """``index`` moved forward to where a listing page (or a collection) starts."""
        while 0 < index < len(work):
            kind, position, _ = work[index]
            before_kind, before, _ = work[index - 1]
            per_page = self.site.collections[kind].per_page
            if kind != before_kind or not per_page or position // per_page != before // per_page:
                break
            index += 1
        return index

    def _listing_shares(self, render: Any, urls: list[str], owners: dict[str, tuple[str, str]],
                        slugs: dict[str, list[str]], workers: int) -> list[Any]:
        """Shares of pages that may read any record, one per worker."""
        count = min(workers, len(urls))
        return [render.Share({}, urls[index::count], owners, {}, slugs, complete=True) for index in range(count)]

    def _run(self, render: Any, job: Any, shares: list[Any], done_before: int, total: int) -> list[Any]:
        results = render.run_shares(job, shares, lambda done: self.progress(done_before + done, total),
                                    self._take_pages)
        _raise_first_failure(results)
        return results

    def _merge_records(self, slugs: dict[str, list[str]],
                       parsed_now: dict[str, dict[str, bytes]]) -> dict[str, dict[str, bytes]]:
        """Every record's field digests: parsed now, or kept from the last freeze."""
        records = {}
        for kind, names in slugs.items():
            parsed = parsed_now.get(kind, {})
            old = self.old_records.get(kind, {})
            if names == list(old):  # no file came or went: a copy, 40-80 ms -> 2 ms at 100,000 users
                records[kind] = {**old, **parsed}
            elif len(parsed) == len(names) and list(parsed) == names:  # every record parsed, as in a first freeze
                records[kind] = parsed
            else:
                records[kind] = {slug: parsed[slug] if slug in parsed else old[slug] for slug in names}
        return records

    def _merge_references(self, records: dict[str, dict[str, bytes]], parsed_now: dict[str, dict[str, bytes]],
                          parses: list[Any]) -> dict[str, dict[str, list]]:
        """Each record's references: found by this freeze's parse, or kept for the records not parsed."""
        references: dict[str, dict[str, list]] = {
            kind: {slug: found for slug, found in self.old_references.get(kind, {}).items()
                   if slug in records[kind] and slug not in parsed_now.get(kind, {})} for kind in records}
        for parsed in parses:
            for reference in parsed.references:
                references[reference[0]].setdefault(reference[1], []).append(reference)
        return {kind: by_slug for kind, by_slug in references.items() if by_slug}
