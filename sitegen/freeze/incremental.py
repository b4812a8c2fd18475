"""What the last freeze was built from, so the next one redoes only what changed.

The state is one file, ``.<build>.state/state.marshal`` beside the output (never
inside what a host serves). It holds:

- ``sources``: every content, template and static file as
  ``path -> (ctime_ns, size, digest)``; a file is hashed again only when its
  size or change time moved (see change_stamp), and a file changed just
  before a freeze is hashed again next time (an edit within one timestamp
  tick keeps the time);
- ``records``: for every record, in file-name order, a digest of each of its
  fields (``FIELD_DIGEST`` bytes each, fields in declaration order): enough
  to tell which fields an edit changed, and so which listing pages show
  them, without keeping any record's data (a page that needs a record's
  data parses its file again);
- ``references``: each record's references to other records (only records
  that have some), so a deleted record breaks the records that name it
  without parsing them;
- ``pages``: ``url -> (file, owner, dependencies, links)`` (see
  dependencies.py and linkcheck.py); a record page's dependencies leave
  out its own record's file, which its owner implies, so that the pages of
  one route share one tuple.

The file is three marshalled parts, each led by its length: a head (the
version, the fingerprint, the sources and the number of pages), the records
and their references, then the pages. A freeze
with nothing to do parses only the head: 0.7 MB of the 4.7 MB at 10,000
users, 6 ms instead of 50, and as much less to free at exit. It is written
only as part of a commit, or when files were touched but not edited (then
with the records and pages copied over as bytes).
Beside it, ``jinja/`` caches compiled templates (Jinja checks each against
its source), so rendering one page does not compile the templates first;
templates compiled by a freeze are committed with it.
A commit is staged whole first (new files, the new state, the list of files to
delete, a link to every file it replaces), then marked ready; a freeze that
finds a ready commit (the previous one crashed while applying it) finishes it,
one that finds an unready staging folder throws it away, and a commit that
fails while applying is undone (see BuildFolders). build/ and the state change
together or not at all.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import importlib.util
import marshal
import os
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

from ..content.model import Records, is_record_file
from ..errors import SiteError, describe_os_error
from ..links import OUTSIDE_LINK, followed_link, leads_outside
from .pages import Pages

try:  # hashlib's own blake2b, without the OpenSSL bindings importing hashlib loads (5 ms of CPU per run)
    from _blake2 import blake2b
except ImportError:  # a Python built without its own hash functions
    from hashlib import blake2b

STATE_VERSION = 10
CONTENT_DIGEST = 16  # bytes of a file's digest
HEAD_LENGTH_BYTES = 8  # the state file starts with the length of its head
STATE_FILE = "state.marshal"
COMMIT_FILE = "commit.marshal"  # the journal of a commit that is ready to apply
ROLLBACK_FILE = "rollback.marshal"  # the same journal, once a failure started undoing it
LOCK_FILE = "lock"
STAGING_MARK = "made-by-sitegen"  # in every staging folder from its first moment
INSIDE_STAGING = ".sitegen-staging"  # the staging folder inside a destination that is a mount point
MARKER = ".sitegen-build"
MARKER_TEXT = "Made by `python site.py freeze`, which rewrites the files in this folder.\n"
# Files modified this close before a scan are hashed again on the next freeze.
RACY_NS = 2_000_000_000
FIELD_DIGEST = 8  # bytes of a field's digest in the state (see field_digests)
UNKNOWN_FIELDS = b""  # a record whose fields the state does not know: every field counts as changed
SOURCE_FOLDERS = ("templates", "static")
LIBRARIES = ("flask", "werkzeug", "jinja2", "flask_frozen", "yaml", "pydantic", "markdown_it")

Sources = dict[str, tuple[int, int, bytes]]


@contextlib.contextmanager
def cyclic_gc(enabled: bool) -> Iterator[None]:
    """Run a block with Python's cycle collector on or off, then put it back.

    The state and the scans of a freeze are hundreds of thousands of tuples
    that live until the freeze ends and hold no cycles; with the collector
    on, importing Flask and loading them pays for scanning them again and
    again. Rendering turns it back on: Werkzeug's URL matcher leaves a cycle
    behind on every request. What exists by then (the state, the imported
    modules) is set aside for the block, as its first collection would
    otherwise scan all of it (77 ms of a 10,000-page edit).
    """
    was_enabled = gc.isenabled()
    if enabled:
        gc.freeze()
    (gc.enable if enabled else gc.disable)()
    try:
        yield
    finally:
        (gc.enable if was_enabled else gc.disable)()
        if enabled:
            gc.unfreeze()


def digest(data: bytes) -> bytes:
    return blake2b(data, digest_size=CONTENT_DIGEST).digest()


def file_digest(path: Path) -> bytes:
    return digest(read_file(path)[0])


def read_file(path: Path) -> tuple[bytes, os.stat_result]:
    """A whole file and its stat before reading (so a later edit shows as a newer change time).

    Plain system calls: half the cost of open() and its buffered file object.
    """
    descriptor = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        stat = os.fstat(descriptor)
        chunks = []
        while chunk := os.read(descriptor, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks), stat
    finally:
        os.close(descriptor)


def fingerprint(root: Path, base_url: str | None) -> bytes:
    """Everything besides the sources that shapes the output: the code and its libraries.

    The code is the engine's (its modules and built-in templates) and the
    site's own Python files at the project's top level (site.py and what it
    imports from beside it). A library is known by its installed entry
    file's size and time (a new release rewrites it), which needs no import
    and no package metadata scan.
    """
    parts = [str(STATE_VERSION), str(root), str(base_url)]
    for name in LIBRARIES:
        spec = importlib.util.find_spec(name)
        stat = os.stat(spec.origin) if spec and spec.origin else None
        parts.append(f"{name}:{spec and spec.origin}:{stat and (stat.st_mtime_ns, stat.st_size)}")
    # os.walk, not Path.rglob: the fingerprint takes 3 ms instead of 4.5 (first call in a process).
    package = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
    engine = []
    for folder, subfolders, names in os.walk(package):
        subfolders[:] = [name for name in subfolders if name != "__pycache__"]
        engine += [path for path in (os.path.join(folder, name) for name in names) if os.path.isfile(path)]
    # Each file named before its bytes: a file added, even empty, or renamed is a change.
    code = b"".join(b"\0%s\0%s" % (os.fsencode(path), read_file(path)[0])
                    for path in sorted(engine) + sorted(map(str, root.glob("*.py"))))
    return digest("\0".join(parts).encode() + code)


def change_stamp(info: os.stat_result) -> tuple[int, int]:
    """What a source's stat tells of its version: its change time (ns) and its size.

    The change time, not the modification time: a program can set a file's
    mtime back (``touch -d``, tar, ``rsync -t``) over other bytes of the
    same size, but not its ctime, which each write, and each setting of the
    mtime, moves to now. A change of owner or mode moves it too, and costs
    one more hash of the file, not a page.
    """
    return info.st_ctime_ns, info.st_size


def scan_sources(root: Path, collections: list[str], *, stat_records: bool = True,
                 links: list[str] | None = None) -> dict[str, tuple[int, int] | None]:
    """``path -> change_stamp`` of every file a page can be built from.

    Without ``stat_records`` a record file maps to None: a freeze with no
    state parses every record anyway, and the worker that reads a file takes
    its stat then (see source_entry), sparing the parent 10,000 calls.
    ``links``, when given, receives the path of every symbolic link met: what
    a link leads to can change with no event at the link itself, so a watcher
    that keeps a scan up to date from events cannot vouch for one.

    A link that leads outside the project (or to nothing) stops the freeze
    before anything is read, with one line per link (see sitegen/links.py);
    links to folders are not descended, as Frozen-Flask does not for static/.
    """
    found: dict[str, tuple[int, int] | None] = {}
    problems: list[str] = []
    links = [] if links is None else links
    for top in ("content", *SOURCE_FOLDERS, *(f"content/{folder}" for folder in collections)):
        if leads_outside(root / top, root):
            problems.append(f"{top}: {OUTSIDE_LINK}")
    if problems:
        raise SiteError("\n".join(problems))
    site = root / "content" / "site.yaml"
    if site.is_file() or site.is_symlink():
        if site.is_symlink():
            links.append("content/site.yaml")
        if not site.is_symlink() or followed_link(root, "content/site.yaml", problems):
            found["content/site.yaml"] = change_stamp(site.stat())
    for folder in collections:
        prefix = f"content/{folder}/"
        try:  # listed from a descriptor, each file is looked up in the folder, not from / again: -11 %
            descriptor = os.open(root / "content" / folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):  # no records, as the loader sees it (record_files)
            continue
        try:
            with os.scandir(descriptor) as entries:
                for entry in entries:  # once per record: each name and path made once
                    name = entry.name
                    if not is_record_file(name):
                        continue
                    path = prefix + name
                    if _followed(root, path, entry, problems, links) and entry.is_file():
                        if stat_records:
                            found[path] = change_stamp(entry.stat())
                        else:
                            found[path] = None
        finally:
            os.close(descriptor)
    for folder in SOURCE_FOLDERS:
        _scan_tree(root, folder, found, problems, links)
    if problems:
        raise SiteError("\n".join(sorted(problems)))
    return found


def _followed(root: Path, relative: str, entry: os.DirEntry, problems: list[str], links: list[str]) -> bool:
    """Whether a scanned entry may be read: anything but a link, or a link that stays in the project."""
    if not entry.is_symlink():
        return True
    links.append(relative)
    return followed_link(root, relative, problems)


def _scan_tree(root: Path, relative: str, found: dict[str, tuple[int, int] | None], problems: list[str],
               links: list[str]) -> None:
    """Every file below ``root/relative`` into ``found``, checking each link on the way."""
    try:
        entries = os.scandir(os.path.join(root, relative))
    except (FileNotFoundError, NotADirectoryError):
        return
    with entries:
        for entry in entries:
            path = f"{relative}/{entry.name}"
            if entry.name.startswith(".") and entry.is_symlink():  # Emacs's lock file (.#name) links to nowhere;
                continue  # a hidden link is neither published nor a template any page names
            if not _followed(root, path, entry, problems, links):
                continue
            if entry.is_dir(follow_symlinks=False):
                _scan_tree(root, path, found, problems, links)
            elif not entry.is_dir():
                found[path] = change_stamp(entry.stat())


class SourceChanges:
    """How the sources differ from the last freeze."""

    def __init__(self) -> None:
        self.changed: set[str] = set()  # edited, added or removed
        self.added: set[str] = set()
        self.removed: set[str] = set()
        self.sources: Sources = {}  # the new table; records to parse are filled in later

    def any(self) -> bool:
        return bool(self.changed)


def racy_cutoff() -> int:
    """Files modified after this time (ns) are hashed again by the next freeze (see source_entry)."""
    return time.time_ns() - RACY_NS


def source_entry(ctime_ns: int, size: int, content_digest: bytes, racy_after: int) -> tuple[int, int, bytes]:
    """A file's entry in the state; a file changed after ``racy_after`` keeps no time,
    so that the next freeze hashes it again (an edit within one timestamp tick keeps the time)."""
    return (ctime_ns if ctime_ns < racy_after else -1, size, content_digest)


def compare_sources(root: Path, scanned: dict[str, tuple[int, int] | None], previous: Sources,
                    *, hash_content: bool, moved: set[str] | None = None) -> SourceChanges:
    """Compare a scan with the last state, hashing only files whose stat moved.

    With ``hash_content=False`` new and moved content files are left
    unhashed: the workers that parse them hash them, and their entries are
    filled in from what the workers report (see source_entry).

    ``moved``, when known, holds every path whose scan may differ from its
    entry in ``previous`` (a watching freeze knows them from file events,
    see kept.py): only those, and the entries the state left unknown or too
    recent to trust, are looked at. At 100,000 users 5 ms instead of 110.
    """
    changes = SourceChanges()
    racy_after = racy_cutoff()
    if moved is None:
        paths: Iterable[str] = scanned
    else:
        changes.sources = dict(previous)
        looked_at = moved | {path for path, entry in previous.items() if not 0 <= entry[0] < racy_after}
        paths = {path for path in looked_at if path in scanned}
        changes.removed = {path for path in looked_at - paths if path in previous}
        for path in changes.removed:
            del changes.sources[path]
    # The scan's own pairs, each field compared alone, and the removed files looked for only when some
    # entry was not scanned again: 30 ms instead of 50 at 100,000 files with nothing changed.
    sources, entry_of = changes.sources, previous.get
    for path, stat in (scanned.items() if moved is None else ((path, scanned[path]) for path in paths)):
        old = entry_of(path)
        if old is not None and old[0] == stat[0] and old[1] == stat[1]:  # (a None stat has no old entry)
            # The same entry, not an equal new one: at 10,000 files this and comparing
            # the tables (identical values compare at once) take 5 ms instead of 10.
            sources[path] = old if old[0] < racy_after else source_entry(*stat, old[2], racy_after)
            continue
        if not hash_content and path.startswith("content/") and path != "content/site.yaml":
            sources[path] = (-1, -1, b"")  # until the worker that parses it reports
            changes.changed.add(path)
        else:
            new_digest = file_digest(root / path)
            sources[path] = source_entry(*stat, new_digest, racy_after)
            if old is None or old[2] != new_digest:
                changes.changed.add(path)
        if old is None:
            changes.added.add(path)
    if moved is None and len(scanned) - len(changes.added) < len(previous):  # not every entry was scanned again
        changes.removed = {path for path in previous if path not in scanned}
    changes.changed |= changes.removed
    return changes


def keep_versions_rendered(root: Path, sources: Sources, read: list[dict[str, bytes]]) -> None:
    """Make the state claim, for each source read while rendering, the version rendered with.

    The scan hashed templates and static files before rendering; a file saved
    in between (or between two workers' reads) would otherwise be recorded
    with a version no page was made from, and undoing that edit would leave
    stale pages. Such a file is recorded as unknown, so the next freeze
    renders its pages again. content/site.yaml, parsed in the parent, is
    hashed again for the same reason.
    """
    unknown = (-1, -1, b"")
    for log in read:
        for path, found in log.items():
            entry = sources.get(path)
            if entry is not None and entry[2] != found:
                sources[path] = unknown
    site = sources.get("content/site.yaml")
    if site is not None:
        try:
            if file_digest(root / "content" / "site.yaml") != site[2]:
                sources["content/site.yaml"] = unknown
        except OSError:
            sources["content/site.yaml"] = unknown


# ---------------------------------------------------------------- records

def field_digests(values: tuple) -> bytes:
    """A record's fields (Schema.encode) as one digest of FIELD_DIGEST bytes each, in field order.

    The state keeps these instead of the values: 32 bytes a user against
    the encoded fields, and the data never has to sit in one process for
    every record. ``repr`` of the plain encoded values is stable
    from one run to the next (``marshal``'s bytes depend on reference counts).
    """
    return b"".join(blake2b(repr(value).encode(), digest_size=FIELD_DIGEST).digest() for value in values)


def changed_fields(before: bytes, after: bytes, names: list[str]) -> list[str]:
    """The names of the fields whose digests differ (all of them when ``before`` is UNKNOWN_FIELDS)."""
    return [name for index, name in enumerate(names)
            if before[index * FIELD_DIGEST:(index + 1) * FIELD_DIGEST]
            != after[index * FIELD_DIGEST:(index + 1) * FIELD_DIGEST]]


class LazyRecords(Records):
    """One collection whose records are made on first access by ``load(slug)``.

    ``slugs`` lists the collection (in order: it is iterated) and answers
    ``in``. A page that reads one record loads one; loaded records are kept
    only until CACHED of them pile up, so a process that renders page after
    page never holds every record at once.
    """

    CACHED = 256

    def __init__(self, slugs: Any, load: Any):
        super().__init__()
        self._slugs, self._load = slugs, load

    def __missing__(self, slug: str) -> Any:
        if slug not in self._slugs:
            raise KeyError(slug)
        return self._loaded(slug)

    def listed(self, slug: str) -> Any:
        """The record of a slug taken from the collection's own list: known to be there, not looked up."""
        record = dict.get(self, slug, _NOT_LOADED)
        return self._loaded(slug) if record is _NOT_LOADED else record

    def _loaded(self, slug: str) -> Any:
        record = self._load(slug)
        if dict.__len__(self) >= self.CACHED:
            self.clear()
        self[slug] = record
        return record

    def __contains__(self, slug: object) -> bool:
        return slug in self._slugs

    def __iter__(self):
        return iter(self._slugs)

    def __len__(self) -> int:
        return len(self._slugs)

    def get(self, slug: str, default: Any = None) -> Any:
        return self[slug] if slug in self._slugs else default

    def values(self):  # type: ignore[override]
        return [self.listed(slug) for slug in self._slugs]

    def items(self):  # type: ignore[override]
        return [(slug, self.listed(slug)) for slug in self._slugs]


_NOT_LOADED = object()


class ListedSlugs:
    """A collection's slugs in order, for LazyRecords; ``in`` makes a set of them the first time it is
    asked, when a page looks a record up by its slug. The listing worker of a first freeze never
    does: a dictionary of the slugs made up front was 40 MB of it at a million users."""

    def __init__(self, slugs: list[str]):
        self._slugs: list[str] = slugs
        self._members: frozenset[str] | None = None

    def __iter__(self) -> Iterator[str]:
        return iter(self._slugs)

    def __len__(self) -> int:
        return len(self._slugs)

    def __contains__(self, slug: object) -> bool:
        if self._members is None:
            self._members = frozenset(self._slugs)
        return slug in self._members


# ---------------------------------------------------------------- the state file and commits

class State:
    def __init__(self, fingerprint: bytes, sources: Sources, site: tuple | None,
                 records: dict[str, dict[str, bytes]], references: dict[str, dict[str, list]],
                 pages: Pages, plan: tuple | None = None):
        self.fingerprint, self.sources, self.site = fingerprint, sources, site
        self.records = records  # kind -> slug -> field_digests, in file-name order
        self.references = references  # kind -> slug -> its references (loader.find_references)
        self.pages = pages
        self.plan = plan  # the pages that belong to no record, as render.plan_pages made them

    def write(self, file: BinaryIO) -> None:
        """Write the state file: its head, then the records and the pages, each marshalled and written in
        turn (marshalled at once, the three took 300 MB beside the state at a million pages)."""
        for value in (state_head(self.fingerprint, self.sources, len(self.pages)),
                      (self.site, self.records, self.references, self.plan), self.pages.dumped()):
            data = marshal.dumps(value)
            file.write(len(data).to_bytes(HEAD_LENGTH_BYTES, "little"))
            file.write(data)
            del data  # not held while the next part is marshalled


def state_head(fingerprint: bytes, sources: Sources, page_count: int) -> tuple:
    """The state file's first part, all that a freeze with nothing to do reads."""
    return STATE_VERSION, fingerprint, sources, page_count


def _parts(data: bytes) -> Iterator[Any]:
    """The values of the parts that ``data`` holds."""
    view, at = memoryview(data), 0
    while at < len(view):
        length = int.from_bytes(view[at:at + HEAD_LENGTH_BYTES], "little")
        at += HEAD_LENGTH_BYTES
        yield marshal.loads(view[at:at + length])
        at += length


class StoredState(NamedTuple):
    """The last freeze's state as its head tells it; the records and the pages are read when asked for."""

    fingerprint: bytes
    sources: Sources
    page_count: int
    path: Path
    rest_offset: int  # where the records and the pages start in the file

    def rest(self) -> bytes:
        with open(self.path, "rb") as file:
            file.seek(self.rest_offset)
            return file.read()

    def moved(self) -> set[str] | None:
        """The sources whose scan may differ from this state's entries: unknown, so all of them."""
        return None

    def load(self) -> State | None:
        """The whole state; None if the file is damaged past its head (the freeze then renders everything)."""
        try:
            (site, records, references, plan), (whole, columns) = _parts(self.rest())
        except (OSError, ValueError, EOFError, TypeError, OverflowError):
            return None
        return State(self.fingerprint, self.sources, site, records, references, Pages(whole, columns), plan)


class BuildFolders:
    """The output folder, the state folder beside it, and where the next commit is staged.

    ``.<build>.state/`` holds the lock, the state, the compiled templates and
    ``next/``, the commit being prepared: the new state, newly compiled
    templates and the journal. New pages are staged in ``next/tree/`` too: on
    the disk of build/, so that each moves in with one rename. When build/ is
    itself a mount point (a container volume, another disk than its parent's),
    they are staged in ``build/.sitegen-staging/`` instead, the one place sure
    to be on its disk. A staging folder holds a ``made-by-sitegen`` file from
    its first moment; no other folder is ever removed.

    The commit is journaled: before anything in build/ changes, every file it
    replaces or deletes is hard-linked (copied where links are not
    supported) into ``old/`` beside the staged files, and the journal is
    written. Applying it deletes the gone files, moves the new ones in, then
    replaces the state. A failure on the way (a read-only or immutable
    folder, a full disk, another device) puts every file back from ``old/``
    and reports one line; a crash on the way is finished by the next freeze,
    or undone by it if the crash came while undoing (see recover).
    """

    def __init__(self, dest: Path):
        self.dest = dest
        self.state = dest.parent / f".{dest.name}.state"
        self.next = self.state / "next"
        # Compiled templates: read from the state, new ones staged and committed with the build.
        self.templates = self.state / "jinja"
        self.staged_templates = self.next / "jinja"
        self.staging = self.next  # where pages are staged; inside dest when dest is a mount point
        self.claimed = False  # whether this freeze put the marker into an empty destination

    @property
    def tree(self) -> Path:
        return self.staging / "tree"

    @property
    def backups(self) -> Path:
        return self.staging / "old"

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Be the only freeze into this destination while the block runs.

        A second freeze would take the first one's staging folder for a
        crashed one and throw it away, or apply its commit twice. The lock
        (``flock`` on a file in the state folder) goes with the process, so
        a killed freeze never leaves it held; a first freeze that fails
        takes the folder away again, as if it had never run.
        """
        self.state.mkdir(parents=True, exist_ok=True)
        path = self.state / LOCK_FILE
        with open(path, "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held = os.fstat(lock.fileno()).st_ino == os.stat(path).st_ino
            except (BlockingIOError, FileNotFoundError):
                held = False
            if not held:  # taken, or just removed by a failed first freeze
                raise SiteError(f"another freeze into {self.dest} is running; "
                                "wait for it to finish and run this one again")
            try:
                yield
            finally:
                if os.listdir(self.state) == [LOCK_FILE]:
                    path.unlink()
                    self.state.rmdir()

    def load_state(self, expected_fingerprint: bytes) -> StoredState | None:
        """The head of the last freeze's state, if it was made by this code; None otherwise."""
        path = self.state / STATE_FILE
        try:
            with open(path, "rb") as file:
                length = int.from_bytes(file.read(HEAD_LENGTH_BYTES), "little")
                version, stored_fingerprint, sources, page_count = marshal.loads(file.read(length))
        except (OSError, ValueError, EOFError, TypeError, OverflowError):  # OverflowError: an older format
            return None
        if version != STATE_VERSION or stored_fingerprint != expected_fingerprint:
            return None
        return StoredState(stored_fingerprint, sources, page_count, path, HEAD_LENGTH_BYTES + length)

    def save_sources(self, stored: StoredState, sources: Sources) -> None:
        """Replace the state's sources alone (the build is unchanged), atomically; a failure leaves no temporary file.

        Nothing is written when they are the state's already.
        """
        if sources == stored.sources:
            return
        temporary = self.state / (STATE_FILE + ".tmp")
        try:
            first = marshal.dumps(state_head(stored.fingerprint, sources, stored.page_count))
            temporary.write_bytes(len(first).to_bytes(HEAD_LENGTH_BYTES, "little") + first + stored.rest())
            os.replace(temporary, self.state / STATE_FILE)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise

    # ------------------------------------------------------------ staging

    def recover(self) -> None:
        """Finish a commit a crash interrupted, finish undoing one, or drop staging that never got that far.

        A commit is finished only while build/ is still ours (it holds the
        marker) or does not exist yet; if someone emptied or removed it
        meanwhile, the commit is dropped and build/ left as it is.
        """
        journal = self._journal()
        if journal is not None:
            self.staging, self.claimed = Path(journal[0]), journal[2]
            ours = (self.dest / MARKER).is_file()
            if (self.next / COMMIT_FILE).is_file() and (ours or (journal[1] and not self.dest.exists())):
                self.apply_commit()
            elif (self.next / ROLLBACK_FILE).is_file() and ours:
                self._roll_back(journal)
        self.staging, self.claimed = self.next, False
        for folder in (self.next, self.dest / INSIDE_STAGING):
            _remove_marked(folder)

    def start_staging(self) -> None:
        """Empty staging folders, marked as ours; an empty destination is claimed with the marker first.

        Claiming first means a freeze killed at any point leaves a
        destination the next freeze accepts as its own.
        """
        self.recover()
        if self._dest_is_a_mount_point():
            self.staging = self.dest / INSIDE_STAGING  # renames from beside it would fail with EXDEV
        for folder in dict.fromkeys((self.next, self.staging)):
            folder.mkdir()
            (folder / STAGING_MARK).write_bytes(b"")
        self.tree.mkdir()
        if self.dest.is_dir() and not (self.dest / MARKER).exists():
            (self.dest / MARKER).write_text(MARKER_TEXT)
            self.claimed = True

    def _dest_is_a_mount_point(self) -> bool:
        """Whether build/ is on another device than the state folder beside it."""
        return self.dest.is_dir() and os.stat(self.dest).st_dev != os.stat(self.state).st_dev

    def discard_staging(self) -> None:
        """Drop what this freeze staged, and the marker it claimed an empty destination with."""
        for folder in dict.fromkeys((self.staging, self.next)):
            _remove_marked(folder, ignore_errors=True)
        self._unclaim()

    def files_not_written(self, written: list[str]) -> list[str]:
        """The destination's files that a freeze from scratch did not write: all of them to delete."""
        kept = {*written, MARKER}
        return sorted(file for file in files_under(self.dest)
                      if file not in kept and not file.startswith(INSIDE_STAGING + "/"))

    # ------------------------------------------------------------ the commit

    def mark_ready(self, state: State, written: list[str], deleted: list[str]) -> None:
        """Stage the new state, back up what the commit replaces, then mark it ready in one rename."""
        whole_tree = not self.dest.exists()
        with open(self.next / STATE_FILE, "wb") as file:
            state.write(file)
        existed = [] if whole_tree else self._back_up(written + deleted)
        ready = self.next / (COMMIT_FILE + ".tmp")
        ready.write_bytes(marshal.dumps((str(self.staging), whole_tree, self.claimed, written, deleted, existed)))
        os.replace(ready, self.next / COMMIT_FILE)

    def apply_commit(self) -> None:
        """Delete the gone files and move the staged ones in, then the state; safe to repeat after a crash.

        A failure puts build/ back as it was and raises one line; so does
        Ctrl-C (or SIGTERM), which then goes on stopping the freeze. Once the
        state is moved in, the new build stands: an interrupt while the
        commit is tidied away is held off and dropped, and the freeze ends
        as done. Only a crash (a kill, a power cut) leaves the journal for
        the next freeze.
        """
        journal = self._journal()
        assert journal is not None
        _, whole_tree, _, written, deleted, existed = journal
        interrupts = _HeldInterrupts()
        try:
            try:
                if whole_tree:
                    if self.tree.exists() and not self.dest.exists():
                        _move(os.rename, self.tree, self.dest)
                else:
                    self._move_in(written, deleted)
                interrupts.hold()
                if (self.next / STATE_FILE).exists():
                    _move(os.replace, self.next / STATE_FILE, self.state / STATE_FILE)
            except Exception as exc:
                self._undo(journal, exc)
            except (KeyboardInterrupt, SystemExit):  # asked to stop: not half of the new build
                self._mark_undoing()
                self._roll_back(journal)
                raise
            with contextlib.suppress(OSError):  # compiled templates are a cache: Jinja checks them anyway
                if self.staged_templates.is_dir():
                    self.templates.mkdir(exist_ok=True)
                    for compiled in self.staged_templates.iterdir():
                        os.replace(compiled, self.templates / compiled.name)
            (self.next / COMMIT_FILE).unlink()
            if not whole_tree:
                _empty_known_folders(self.tree, written, files_left=False)  # moved in: only their folders left
                _empty_known_folders(self.backups, existed)
            for folder in dict.fromkeys((self.staging, self.next)):
                _remove_marked(folder, ignore_errors=True)
        finally:
            interrupts.drop()

    def _journal(self) -> tuple | None:
        for name in (COMMIT_FILE, ROLLBACK_FILE):
            try:
                return marshal.loads((self.next / name).read_bytes())
            except FileNotFoundError:
                continue
        return None

    def _back_up(self, relatives: list[str]) -> list[str]:
        """Link each existing file the commit replaces or deletes into old/; the ones that existed.

        With plain string paths, and the link tried before anything is looked
        at: a commit that replaces every page of a 10,000-page build spent
        about a second in pathlib here and in _move_in (docs/speed.md).
        """
        existed = []
        dest, backups = str(self.dest), str(self.backups)
        for relative in relatives:
            current, backup = os.path.join(dest, relative), os.path.join(backups, relative)
            try:
                _link_or_copy(current, backup)
            except (FileNotFoundError, NotADirectoryError):  # NotADirectory: a file where its folder will be
                if not os.path.lexists(current) or os.path.isdir(current):
                    continue
                _make_folder(os.path.dirname(backup))
                _link_or_copy(current, backup)
            except IsADirectoryError:  # a folder where the file will be: its files are among the gone ones
                continue
            existed.append(relative)
        return existed

    def _move_in(self, written: list[str], deleted: list[str]) -> None:
        """The gone files deleted first (with the folders they leave empty): a file may become a
        folder of the same name, or a folder a file; then the new files moved in."""
        tree, dest = str(self.tree), str(self.dest)
        for relative in deleted:  # after a crash, the path may be a folder of new files now: skipped
            with contextlib.suppress(FileNotFoundError, IsADirectoryError, NotADirectoryError):
                os.unlink(os.path.join(dest, relative))
            _remove_empty_parents(self.dest / relative, self.dest)
        for relative in written:
            source, target = os.path.join(tree, relative), os.path.join(dest, relative)
            try:
                _move(os.replace, source, target)
            except FileNotFoundError:
                if not os.path.exists(source):
                    continue  # moved in before a crash
                _make_folder(os.path.dirname(target))
                _move(os.replace, source, target)

    def _undo(self, journal: tuple, exc: Exception) -> None:
        """Put build/ back after ``exc`` stopped the commit, and report it in one line."""
        self._mark_undoing()
        problem = describe_os_error(exc, self.dest)
        try:
            self._roll_back(journal)
        except Exception as again:
            raise SiteError(f"{problem}; putting {self.dest} back failed too ({describe_os_error(again, self.dest)}): "
                            "the next freeze will try again") from None
        raise SiteError(f"{problem}; {self.dest} is unchanged") from None

    def _mark_undoing(self) -> None:
        """From here on, a crash makes the next freeze finish undoing the commit, not applying it."""
        with contextlib.suppress(OSError):
            os.replace(self.next / COMMIT_FILE, self.next / ROLLBACK_FILE)

    def _roll_back(self, journal: tuple) -> None:
        """Undo a commit, as far as it went: the old files back, the new ones out; safe to repeat."""
        _, whole_tree, claimed, written, deleted, existed = journal
        if whole_tree:
            if self.dest.exists() and not self.tree.exists():
                os.rename(self.dest, self.tree)
        else:
            existed_set, written_set = set(existed), set(written)
            for relative in written + deleted:
                target, backup = self.dest / relative, self.backups / relative
                if relative in existed_set:
                    if os.path.lexists(backup) and not _same_file(backup, target):
                        target.parent.mkdir(parents=True, exist_ok=True)
                        os.replace(backup, target)
                elif relative in written_set:
                    if not self.tree.joinpath(relative).exists():  # moved in: take it out
                        target.unlink(missing_ok=True)
                    _remove_empty_parents(target, self.dest)  # and the folders made for it
        self.claimed = claimed
        (self.next / ROLLBACK_FILE).unlink(missing_ok=True)
        (self.next / COMMIT_FILE).unlink(missing_ok=True)
        self.discard_staging()

    def _unclaim(self) -> None:
        """Take back the marker this freeze put into an empty destination, if it is still all there is."""
        if self.claimed and self.dest.is_dir() and os.listdir(self.dest) == [MARKER]:
            (self.dest / MARKER).unlink()
        self.claimed = False


class _HeldInterrupts:
    """Ctrl-C and SIGTERM held off (blocked) from ``hold`` on, and dropped at ``drop`` if they came."""

    SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})

    def __init__(self) -> None:
        self.before: set[int] | None = None

    def hold(self) -> None:
        self.before = signal.pthread_sigmask(signal.SIG_BLOCK, self.SIGNALS)

    def drop(self) -> None:
        if self.before is None:
            return
        for number in signal.sigpending() & self.SIGNALS:
            signal.sigwait({number})  # taken, so that letting them in again delivers nothing
        signal.pthread_sigmask(signal.SIG_SETMASK, self.before)
        self.before = None


def _move(move: Callable[[Any, Any], None], source: str | Path, target: str | Path) -> None:
    """``move(source, target)``; a failure names the file it could not write, not the staged one."""
    try:
        move(source, target)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, os.fspath(target)) from exc


def _make_folder(folder: str) -> None:
    """``os.makedirs(folder, exist_ok=True)`` in one call when the parent exists, as it mostly does."""
    try:
        os.mkdir(folder)
    except FileNotFoundError:
        os.makedirs(folder, exist_ok=True)
    except FileExistsError:
        pass


def _link_or_copy(current: str, backup: str) -> None:
    """A hard link of ``current`` at ``backup``; a copy where the file system has no hard links."""
    try:
        os.link(current, backup)
    except (FileNotFoundError, NotADirectoryError):
        raise
    except OSError:
        import shutil

        shutil.copy2(current, backup)


def _same_file(first: Path, second: Path) -> bool:
    """Whether two paths hold the same bytes (a hard link of one another, or a copy)."""
    try:
        one, other = os.stat(first), os.stat(second)
    except FileNotFoundError:
        return False
    if (one.st_ino, one.st_dev) == (other.st_ino, other.st_dev):
        return True
    import filecmp  # here: only undoing a commit on a file system without hard links compares copies

    return one.st_size == other.st_size and filecmp.cmp(first, second, shallow=False)


def _remove_marked(folder: Path, *, ignore_errors: bool = False) -> None:
    """Remove a staging folder a freeze made (it holds the mark); refuse any other in its place."""
    if not folder.exists():
        return
    if not (folder / STAGING_MARK).is_file():
        with contextlib.suppress(OSError):
            folder.rmdir()  # empty: made by a freeze killed before it could mark it
            return
        if ignore_errors:
            return
        raise SiteError(f"{folder} is in the way of the freeze and was not made by one (no {STAGING_MARK} "
                        "file in it); move it elsewhere")
    import shutil  # here, not at the top: a freeze with nothing to do removes nothing (3 ms)

    # The mark goes last: a freeze killed while removing the rest leaves a folder still marked as ours.
    for entry in os.scandir(folder):
        if entry.name != STAGING_MARK:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=ignore_errors)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
    shutil.rmtree(folder, ignore_errors=ignore_errors)


def _empty_known_folders(folder: Path, files: list[str], files_left: bool = True) -> None:
    """Remove ``files`` below ``folder`` (unless none is ``files_left``) and then their folders,
    deepest first, where empty.

    What _remove_marked would find by scanning every folder, which took half
    a second after a commit that replaced every page of a 10,000-page build
    (docs/speed.md); it still removes whatever is left.
    """
    top, folders = str(folder), set()
    for relative in files:
        if files_left:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(top, relative))
        parent = os.path.dirname(relative)
        while parent and parent not in folders:
            folders.add(parent)
            parent = os.path.dirname(parent)
    for relative in sorted(folders, key=lambda name: name.count("/"), reverse=True):
        with contextlib.suppress(OSError):
            os.rmdir(os.path.join(top, relative))


def _remove_empty_parents(path: Path, top: Path) -> None:
    parent = path.parent
    while parent != top:
        try:
            parent.rmdir()
        except OSError:
            return
        parent = parent.parent


def files_under(folder: Path) -> list[str]:
    """Every file below ``folder``, as slash-separated relative paths."""
    found, top = [], str(folder)
    for directory, _, names in os.walk(top):
        prefix = directory[len(top) + 1:].replace(os.sep, "/")
        found += [f"{prefix}/{name}" if prefix else name for name in names]
    return found
