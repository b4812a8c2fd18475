"""What the last freeze was built from, so the next one redoes only what changed.

The state is one file, ``.<build>.state/state.marshal`` beside the output (never
inside what a host serves). It holds:

- ``sources``: every content, template and static file as
  ``path -> (mtime_ns, size, digest)``; a file is hashed again only when its
  size or mtime moved, and a file modified just before a freeze is hashed
  again next time (an edit within one timestamp tick keeps the mtime);
- ``records``: every parsed record, encoded as plain tuples, so pages that
  list all users can be re-rendered without parsing 10,000 files;
- ``pages``: ``url -> (file, owner, dependencies)`` (see dependencies.py).

It is read with one ``marshal.loads`` and written only as part of a commit.
Beside it, ``jinja/`` caches compiled templates (Jinja checks each against
its source), so rendering one page does not compile the templates first;
templates compiled by a freeze are committed with it.
A commit is staged whole first (new files, the new state, the list of files to
delete), then marked ready; a freeze that finds a ready commit (the previous
one crashed while applying it) finishes it, and one that finds an unready
staging folder throws it away. build/ and the state change together or not at all.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fcntl
import gc
import hashlib
import importlib.util
import marshal
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import SiteError
from ..links import OUTSIDE_LINK, followed_link, leads_outside

STATE_VERSION = 1
STATE_FILE = "state.marshal"
COMMIT_FILE = "commit.marshal"
LOCK_FILE = "lock"
# Files modified this close before a scan are hashed again on the next freeze.
RACY_NS = 2_000_000_000
SOURCE_FOLDERS = ("templates", "static")
CONTENT_FOLDERS = ("users", "stores")
LIBRARIES = ("flask", "werkzeug", "jinja2", "flask_frozen", "yaml")

Sources = dict[str, tuple[int, int, bytes]]
Page = tuple[str, Any, tuple[str, ...]]  # (file relative to the build, owner (kind, slug) or None, dependencies)


@contextlib.contextmanager
def cyclic_gc(enabled: bool) -> Iterator[None]:
    """Run a block with Python's cycle collector on or off, then put it back.

    The state and the scans of a freeze are hundreds of thousands of tuples
    that live until the freeze ends and hold no cycles; with the collector
    on, importing Flask and loading them pays for scanning them again and
    again. Rendering turns it back on: Werkzeug's URL matcher leaves a cycle
    behind on every request.
    """
    was_enabled = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        yield
    finally:
        (gc.enable if was_enabled else gc.disable)()


def digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def file_digest(path: Path) -> bytes:
    return digest(read_file(path)[0])


def read_file(path: Path) -> tuple[bytes, os.stat_result]:
    """A whole file and its stat before reading (so a later edit shows as a newer mtime).

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

    A library is known by its installed entry file's size and time (a new
    release rewrites it), which needs no import and no package metadata scan.
    """
    parts = [str(STATE_VERSION), str(root), str(base_url)]
    for name in LIBRARIES:
        spec = importlib.util.find_spec(name)
        stat = os.stat(spec.origin) if spec and spec.origin else None
        parts.append(f"{name}:{spec and spec.origin}:{stat and (stat.st_mtime_ns, stat.st_size)}")
    package = Path(__file__).resolve().parent.parent
    code = b"".join(path.read_bytes() for path in sorted(package.rglob("*.py")))
    return digest("\0".join(parts).encode() + code)


def scan_sources(root: Path, *, stat_records: bool = True) -> dict[str, tuple[int, int] | None]:
    """``path -> (mtime_ns, size)`` of every file a page can be built from.

    Without ``stat_records`` a record file maps to None: a freeze with no
    state parses every record anyway, and the worker that reads a file takes
    its stat then (see source_entry), sparing the parent 10,000 calls.

    A link that leads outside the project (or to nothing) stops the freeze
    before anything is read, with one line per link (see sitegen/links.py);
    links to folders are not descended, as Frozen-Flask does not for static/.
    """
    found: dict[str, tuple[int, int] | None] = {}
    problems: list[str] = []
    for top in ("content", *SOURCE_FOLDERS, *(f"content/{folder}" for folder in CONTENT_FOLDERS)):
        if leads_outside(root / top, root):
            problems.append(f"{top}: {OUTSIDE_LINK}")
    if problems:
        raise SiteError("\n".join(problems))
    site = root / "content" / "site.yaml"
    if site.is_file() or site.is_symlink():
        if not site.is_symlink() or followed_link(root, "content/site.yaml", problems):
            stat = site.stat()
            found["content/site.yaml"] = (stat.st_mtime_ns, stat.st_size)
    for folder in CONTENT_FOLDERS:
        prefix = f"content/{folder}/"
        try:
            entries = os.scandir(root / "content" / folder)
        except FileNotFoundError:
            continue
        with entries:
            for entry in entries:
                if entry.name.endswith((".yaml", ".yml")) and not entry.name.startswith(".") \
                        and _followed(root, prefix + entry.name, entry, problems) and entry.is_file():
                    if stat_records:
                        stat = entry.stat()
                        found[prefix + entry.name] = (stat.st_mtime_ns, stat.st_size)
                    else:
                        found[prefix + entry.name] = None
    for folder in SOURCE_FOLDERS:
        _scan_tree(root, folder, found, problems)
    if problems:
        raise SiteError("\n".join(sorted(problems)))
    return found


def _followed(root: Path, relative: str, entry: os.DirEntry, problems: list[str]) -> bool:
    """Whether a scanned entry may be read: anything but a link, or a link that stays in the project."""
    return not entry.is_symlink() or followed_link(root, relative, problems)


def _scan_tree(root: Path, relative: str, found: dict[str, tuple[int, int] | None], problems: list[str]) -> None:
    """Every file below ``root/relative`` into ``found``, checking each link on the way."""
    try:
        entries = os.scandir(os.path.join(root, relative))
    except (FileNotFoundError, NotADirectoryError):
        return
    with entries:
        for entry in entries:
            path = f"{relative}/{entry.name}"
            if not _followed(root, path, entry, problems):
                continue
            if entry.is_dir(follow_symlinks=False):
                _scan_tree(root, path, found, problems)
            elif not entry.is_dir():
                stat = entry.stat()
                found[path] = (stat.st_mtime_ns, stat.st_size)


@dataclass
class SourceChanges:
    """How the sources differ from the last freeze."""

    changed: set[str] = field(default_factory=set)  # edited, added or removed
    added: set[str] = field(default_factory=set)
    removed: set[str] = field(default_factory=set)
    sources: Sources = field(default_factory=dict)  # the new table; records to parse are filled in later

    def any(self) -> bool:
        return bool(self.changed)


def racy_cutoff() -> int:
    """Files modified after this time (ns) are hashed again by the next freeze (see source_entry)."""
    return time.time_ns() - RACY_NS


def source_entry(mtime_ns: int, size: int, content_digest: bytes, racy_after: int) -> tuple[int, int, bytes]:
    """A file's entry in the state; a file modified after ``racy_after`` keeps no mtime,
    so that the next freeze hashes it again (an edit within one timestamp tick keeps the mtime)."""
    return (mtime_ns if mtime_ns < racy_after else -1, size, content_digest)


def compare_sources(root: Path, scanned: dict[str, tuple[int, int] | None], previous: Sources,
                    *, hash_content: bool) -> SourceChanges:
    """Compare a scan with the last state, hashing only files whose stat moved.

    With ``hash_content=False`` new and moved content files are left
    unhashed: the workers that parse them hash them, and their entries are
    filled in from what the workers report (see source_entry).
    """
    changes = SourceChanges()
    racy_after = racy_cutoff()
    for path, stat in scanned.items():
        old = previous.get(path)
        if old is not None and old[:2] == stat:
            changes.sources[path] = source_entry(*stat, old[2], racy_after)
            continue
        if not hash_content and path.startswith("content/") and path != "content/site.yaml":
            changes.sources[path] = (-1, -1, b"")  # until the worker that parses it reports
            changes.changed.add(path)
        else:
            new_digest = file_digest(root / path)
            changes.sources[path] = source_entry(*stat, new_digest, racy_after)
            if old is None or old[2] != new_digest:
                changes.changed.add(path)
        if old is None:
            changes.added.add(path)
    changes.removed = set(previous) - set(scanned)
    changes.changed |= changes.removed
    return changes


# ---------------------------------------------------------------- records as plain data

_DECODERS = {"dt.date": dt.date.fromordinal}


def encode_record(record: Any) -> tuple:
    """A record as a tuple of marshal-able values, fields in declaration order."""
    values = []
    for value in (getattr(record, f.name) for f in dataclasses.fields(record)):
        values.append(value.toordinal() if isinstance(value, dt.date) else value)
    return tuple(values)


def record_decoder(cls: type) -> Any:
    """The inverse of encode_record for one record class."""
    converters = [(index, _DECODERS[f.type]) for index, f in enumerate(dataclasses.fields(cls))
                  if f.type in _DECODERS]

    def decode(values: tuple) -> Any:
        values = list(values)
        for index, convert in converters:
            values[index] = convert(values[index])
        return cls(*values)

    return decode


def field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


class LazyRecords(dict):
    """Encoded records decoded on first access: a page that reads one user decodes one."""

    def __init__(self, encoded: dict[str, tuple], decode: Any):
        super().__init__()
        self._encoded, self._decode = encoded, decode

    def __missing__(self, slug: str) -> Any:
        record = self._decode(self._encoded[slug])
        self[slug] = record
        return record

    def __contains__(self, slug: object) -> bool:
        return slug in self._encoded

    def __iter__(self):
        return iter(self._encoded)

    def __len__(self) -> int:
        return len(self._encoded)

    def get(self, slug: str, default: Any = None) -> Any:
        return self[slug] if slug in self._encoded else default

    def values(self):  # type: ignore[override]
        return [self[slug] for slug in self._encoded]

    def items(self):  # type: ignore[override]
        return [(slug, self[slug]) for slug in self._encoded]


# ---------------------------------------------------------------- the state file and commits

@dataclass
class State:
    fingerprint: bytes
    sources: Sources
    site: tuple | None
    records: dict[str, dict[str, tuple]]
    pages: dict[str, Page]

    def dump(self) -> bytes:
        return marshal.dumps((STATE_VERSION, self.fingerprint, self.sources, self.site,
                              self.records, self.pages))


class BuildFolders:
    """The output folder and the two folders beside it: the state and the staged next commit."""

    def __init__(self, dest: Path):
        self.dest = dest
        self.state = dest.parent / f".{dest.name}.state"
        self.staging = dest.parent / f".{dest.name}.staging"
        self.tree = self.staging / "tree"
        # Compiled templates: read from the state, new ones staged and committed with the build.
        self.templates = self.state / "jinja"
        self.staged_templates = self.staging / "jinja"

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

    def load_state(self, expected_fingerprint: bytes) -> State | None:
        try:
            data = (self.state / STATE_FILE).read_bytes()
            version, stored_fingerprint, *rest = marshal.loads(data)
        except (OSError, ValueError, EOFError, TypeError):
            return None
        if version != STATE_VERSION or stored_fingerprint != expected_fingerprint:
            return None
        return State(stored_fingerprint, *rest)

    def save_state(self, state: State) -> None:
        """Replace the state alone (the build is unchanged), atomically."""
        self.state.mkdir(exist_ok=True)
        temporary = self.state / (STATE_FILE + ".tmp")
        temporary.write_bytes(state.dump())
        os.replace(temporary, self.state / STATE_FILE)

    def recover(self) -> None:
        """Finish a commit a crash interrupted, or drop a staging folder that never got that far."""
        if (self.staging / COMMIT_FILE).is_file():
            self.apply_commit()
        elif self.staging.exists():
            shutil.rmtree(self.staging)

    def start_staging(self) -> None:
        self.recover()
        self.tree.mkdir(parents=True)

    def discard_staging(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)

    def mark_ready(self, state: State, written: list[str], deleted: list[str]) -> None:
        """Stage the new state and the list of changes, then mark the commit ready in one rename."""
        (self.staging / STATE_FILE).write_bytes(state.dump())
        ready = self.staging / (COMMIT_FILE + ".tmp")
        ready.write_bytes(marshal.dumps((written, deleted)))
        os.replace(ready, self.staging / COMMIT_FILE)

    def apply_commit(self) -> None:
        """Move the staged files in and delete the gone ones; safe to repeat after a crash."""
        written, deleted = marshal.loads((self.staging / COMMIT_FILE).read_bytes())
        if not self.dest.exists() and self.tree.exists():
            os.rename(self.tree, self.dest)
        else:
            made: set[str] = set()
            for relative in written:
                source = self.tree / relative
                if not source.exists():
                    continue  # moved in before a crash
                parent = os.path.dirname(relative)
                if parent not in made:
                    (self.dest / parent).mkdir(parents=True, exist_ok=True)
                    made.add(parent)
                os.replace(source, self.dest / relative)
        for relative in deleted:
            (self.dest / relative).unlink(missing_ok=True)
            _remove_empty_parents(self.dest / relative, self.dest)
        if (self.staging / STATE_FILE).exists():
            self.state.mkdir(exist_ok=True)
            os.replace(self.staging / STATE_FILE, self.state / STATE_FILE)
        if self.staged_templates.is_dir():
            self.templates.mkdir(parents=True, exist_ok=True)
            for compiled in self.staged_templates.iterdir():
                os.replace(compiled, self.templates / compiled.name)
        (self.staging / COMMIT_FILE).unlink()
        shutil.rmtree(self.staging)


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
    found = []
    for directory, _, names in os.walk(folder):
        prefix = Path(directory).relative_to(folder).as_posix()
        found += [name if prefix == "." else f"{prefix}/{name}" for name in names]
    return found
