"""What a watching freeze keeps between its freezes: the scan of the sources, and the last state.

Both stand in for a read of the disk in freeze_site (its ``scan`` and
``folders`` hooks) only while they can vouch for being what that read would
give; otherwise they step aside and the freeze reads the disk as a cold one.

The scan (KeptScan) is scan_sources' answer, brought up to date by a stat of
each path a file event named since (a stat per changed file instead of one
per file: at 100,000 users 0.45 s of statting avoided). It cannot vouch,
and the next freeze scans every file, after the watcher says so (a first
freeze, events lost or a barrier failed, see events.py), after an event
about a folder in a tree, and whenever the sources hold a symbolic link:
what a link leads to can change with no event at the link. It also keeps
the paths it statted again since the scan the kept state was committed
from (``moved``): comparing those with the state, instead of every source,
took a bio edit at 100,000 users from about 0.5 s to 0.3 s with the plan
kept too (docs/speed.md, "A watching freeze").

The state (KeptState) is the one this process's last commit wrote, or
read whole from the file when there was none, used while the state file is
still that one (its inode, size and time) instead of parsing the file
again: a handed-over edit took 0.10-0.11 s instead of 0.14 at 10,000
users, 0.6-0.8 s instead of 1.3 at 100,000 (docs/speed.md, "A watching
freeze"). The freeze that takes it over owns it (it is not kept beside the
new one: marshal, dumping the new state, would note every object the two
share); only a successful commit hands the new state back.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ..content.model import is_record_file
from . import incremental
from .incremental import SOURCE_FOLDERS, STATE_FILE, BuildFolders, State

Scan = dict[str, tuple[int, int] | None]


class KeptScan:
    """scan_sources for freeze_site, answered from the last scan and the paths noted since (``note``)."""

    def __init__(self) -> None:
        self.found: Scan | None = None  # None: the next scan reads every file
        self.stale: set[str] = set()  # paths relative to the project, to stat again
        # Paths statted again since the scan the last commit's state was made from: every path
        # whose entry in that state may differ from ``found`` (None: unknown, compare them all).
        self.moved: set[str] | None = None

    def forget(self) -> None:
        self.found = self.moved = None
        self.stale.clear()

    def settle(self) -> None:
        """A commit's state now holds what this process's last scan found."""
        if self.found is not None:
            self.moved = set()

    def note(self, relative: str) -> None:
        """A file event named this path (relative to the project, with slashes)."""
        if self.found is not None:
            self.stale.add(relative)

    def __call__(self, root: Path, collections: list[str], *, stat_records: bool = True) -> Scan:
        if self.found is not None and stat_records and self._update(root, collections):
            return self.found
        self.found = self.moved = None
        links: list[str] = []
        found = incremental.scan_sources(root, collections, stat_records=stat_records, links=links)
        tops = ("content", *SOURCE_FOLDERS, *(f"content/{folder}" for folder in collections))
        if stat_records and not links and not any(os.path.islink(root / top) for top in tops):
            self.found = found
        self.stale.clear()
        return found

    def _update(self, root: Path, collections: list[str]) -> bool:
        """Stat the noted paths again; False if one of them is something only a whole scan handles."""
        if self.moved is not None:
            self.moved |= self.stale
        for relative in self.stale:
            if _is_source(relative, collections):
                try:
                    info = os.lstat(root / relative)
                except FileNotFoundError:
                    self.found.pop(relative, None)
                    continue
                except OSError:  # e.g. a folder on the way became a file
                    return False
                if not stat.S_ISREG(info.st_mode):  # a link, a folder, a device: leave it to the scan
                    return False
                self.found[relative] = incremental.change_stamp(info)
        self.stale.clear()
        return True


def _is_source(relative: str, collections: list[str]) -> bool:
    """Whether scan_sources lists this path when it is a file (see incremental.scan_sources)."""
    top, _, rest = relative.partition("/")
    if top in SOURCE_FOLDERS:
        return bool(rest)
    if top != "content":
        return False
    folder, _, name = rest.partition("/")
    return rest == "site.yaml" or (folder in collections and "/" not in name and is_record_file(name))


class KeptState:
    """The state of this process's last commit, and the identity of the state file it wrote.

    A state this process committed after its ``scan`` differs from that scan
    only at the paths the scan statted again since (KeptScan.moved), so the
    freeze that takes it over compares those paths only.
    """

    def __init__(self, scan: KeptScan) -> None:
        self.scan = scan
        self.state: State | None = None
        self.written: tuple[int, int, int] | None = None
        self.committed = False  # the state is this process's commit, not read from the file

    def forget(self) -> None:
        self.state = self.written = None
        self.committed = False

    def folders(self, dest: Path) -> BuildFolders:
        """BuildFolders for freeze_site, answering with this state while the file is the one it wrote."""
        return KeptFolders(dest, self)

    def remember(self, state: State | None, written: tuple[int, int, int] | None, *, committed: bool) -> None:
        self.state, self.written, self.committed = state, written, committed
        if committed:
            self.scan.settle()


class KeptFolders(BuildFolders):
    def __init__(self, dest: Path, kept: KeptState):
        super().__init__(dest)
        self.kept = kept
        self.staged: State | None = None  # the state of the commit being prepared

    def load_state(self, expected_fingerprint: bytes) -> InMemory | None:
        """The kept state; or the file's, read whole (not just its head) and kept from now on."""
        path = self.state / STATE_FILE
        state = self.kept.state
        if state is None or state.fingerprint != expected_fingerprint or file_identity(path) != self.kept.written:
            self.kept.forget()
            written = file_identity(path)
            stored = super().load_state(expected_fingerprint)
            if stored is None:
                return None
            state = stored.load()
            if state is None:  # damaged past its head
                return None
            self.kept.remember(state, written, committed=False)
        return InMemory(state, path, self.kept)

    def save_sources(self, stored: InMemory, sources: incremental.Sources) -> None:
        """The state after a freeze that found nothing to do: its sources are now what the scan found,
        so the next freeze compares only what events name (the watcher's first edit at 100,000 users:
        about 1 s when the state read at its start was compared whole)."""
        kept = self.kept.state
        self.kept.forget()
        super().save_sources(stored, sources)
        if kept is not None:
            kept.sources = sources
            self.kept.remember(kept, file_identity(self.state / STATE_FILE), committed=True)

    def mark_ready(self, state: State, written: list[str], deleted: list[str]) -> None:
        super().mark_ready(state, written, deleted)
        self.staged = state

    def apply_commit(self) -> None:
        """Apply the commit; the state kept is then this freeze's own, or none (a commit a crash left)."""
        staged, self.staged = self.staged, None
        self.kept.forget()
        super().apply_commit()
        if staged is not None:
            self.kept.remember(staged, file_identity(self.state / STATE_FILE), committed=True)


class InMemory:
    """What a freeze reads of a StoredState, answered from a kept State; ``load`` hands it over."""

    def __init__(self, state: State, path: Path, kept: KeptState):
        self.fingerprint, self.sources, self.page_count = state.fingerprint, state.sources, len(state.pages)
        self._state: State | None = state
        self._path, self._kept = path, kept
        self._committed = kept.committed

    def moved(self) -> set[str] | None:
        """The sources whose scan may differ from this state's entries (see KeptState), after the scan."""
        return self._kept.scan.moved if self._committed else None

    def load(self) -> State:
        state, self._state = self._state, None
        self._kept.forget()
        assert state is not None
        return state

    def rest(self) -> bytes:
        """The records and pages as the state file holds them (the file is this state's: see KeptFolders)."""
        with open(self._path, "rb") as file:
            head = int.from_bytes(file.read(incremental.HEAD_LENGTH_BYTES), "little")
            file.seek(incremental.HEAD_LENGTH_BYTES + head)
            return file.read()


def file_identity(path: Path) -> tuple[int, int, int] | None:
    """Inode, size and time of a file (None if absent): a state file replaced by another freeze differs."""
    try:
        found = os.stat(path)
    except OSError:
        return None
    return (found.st_ino, found.st_size, found.st_mtime_ns)
