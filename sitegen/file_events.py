"""What the project's watchers share: which paths are noise, which events are writes, when a burst is over.

The preview (sitegen/preview/watch.py, on tornado's loop) and the watching
freeze (sitegen/freeze/watch.py, on its own loop) both take watchdog's
events; this module imports neither tornado nor any watchdog observer.
"""

from __future__ import annotations

import os
from pathlib import PurePath
from typing import Any

# Folders that hold output, local state or other tools' files, never site sources.
IGNORED_FOLDERS = frozenset({"build", "uploads", "instance", "__pycache__", "node_modules",
                             "venv", "env", ".venv", ".git", ".hg", ".svn", ".tox"})
# Editor swap, backup and probe files: vim (.swp, ~, 4913), emacs (#x#, .#x), others.
SCRATCH_SUFFIXES = ("~", ".swp", ".swx", ".swo", ".tmp", ".pyc")
# Opened/closed-without-writing events come from reading, which the watchers' own processes do;
# "attrib" is a touch (a save that changed nothing but the mtime).
WRITE_EVENTS = frozenset({"created", "modified", "deleted", "moved", "closed", "attrib"})
# Events after which the file is whole: written and closed, or renamed into place.
COMPLETE_EVENTS = frozenset({"closed", "moved", "deleted"})


def is_ignored(relative: PurePath, *, whole: bool = False) -> bool:
    """Whether a path, relative to a watched folder, is noise rather than a source.

    In a folder published ``whole`` (static/: every file is copied into the
    build but hidden ones and editor scratch), a folder named build/ or
    node_modules/ holds sources too.
    """
    return (any(is_ignored_folder(part, whole=whole) for part in relative.parts[:-1])
            or is_scratch(relative.name))


def is_ignored_folder(name: str, *, whole: bool = False) -> bool:
    """A folder of output, local state or hidden files; in a folder published ``whole``, hidden only
    (the freeze leaves out what matches ``.?*``)."""
    return name.startswith(".") or not whole and name in IGNORED_FOLDERS


def is_scratch(name: str) -> bool:
    return name.startswith((".", "#")) or name.endswith(SCRATCH_SUFFIXES) or name == "4913"


def written_paths(event: Any) -> tuple[list[str], bool] | None:
    """The paths a watchdog event says were written (a move names both) and whether the write is
    complete; None for an event that writes nothing."""
    if event.event_type not in WRITE_EVENTS:
        return None
    paths = [os.fsdecode(event.src_path)]
    if event.dest_path:
        paths.append(os.fsdecode(event.dest_path))
    return paths, event.event_type in COMPLETE_EVENTS


class QuietWindow:
    """When a burst of events is over: ``quiet`` seconds after the last event (``settle`` seconds
    when that event completed a file, as an editor's save does), or at most ``max_wait`` seconds
    after the first one during a continuous stream."""

    def __init__(self, *, quiet: float = 0.05, settle: float = 0.01, max_wait: float = 0.5):
        self.quiet, self.settle, self.max_wait = quiet, settle, max_wait
        self.first: float | None = None
        self.deadline: float | None = None

    def note(self, now: float, complete: bool) -> float:
        """Take in an event seen at ``now``; the new deadline."""
        if self.first is None:
            self.first = now
        self.deadline = min(now + (self.settle if complete else self.quiet), self.first + self.max_wait)
        return self.deadline

    def close(self) -> None:
        """The burst was handed over: the next event starts another."""
        self.first = self.deadline = None
