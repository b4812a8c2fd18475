"""The watching freeze's file events: watchdog in a process of its own, and the barrier.

Why a process of its own: the watcher forks worker processes for a big
freeze (sitegen/freeze/render.py), and forking a process that runs threads
is unsafe. A thread may hold a lock at the moment of the fork (the logging
module's, an I/O buffer's, one of watchdog's queues); in the child, where
that thread does not exist, the lock is never released, and whoever takes
it next waits forever. watchdog runs several threads (the inotify reader,
an emitter per watch, the dispatcher). So the watcher forks one child
before it starts any thread; that child runs watchdog and writes each
event down a pipe, and the watcher itself stays single-threaded: its forks
are as safe as those of a freeze run from the command line. The child never
imports the site, Flask or the state; it ignores Ctrl-C and ends when the
pipe from its parent closes (the parent ended, was killed, or re-executed
itself). A child that dies is started again, and the next scan is a full one.

The barrier: inotify queues an event when the write() that causes it
returns, but watchdog's threads may not have handed it on yet when a freeze
is asked for. Each watch (content/, templates/, static/) has its own queue
in watchdog (its move grouper and its emitter thread), first in first out,
and so does the pipe. ``barrier`` makes and removes an empty hidden folder
(``.sitegen-barrier-PID-N``) at the top of each watched tree, then reads the
pipe until each one's creation has come through: every event of that tree
queued before it has then been read too. A folder, not a file, because an
empty folder adds nothing to any scan of the sources, should another
process's freeze list the tree at that very moment; every watcher ignores
hidden names. A tree that cannot be written to, or a folder not seen within
the timeout, and the barrier fails: the caller then scans every file.

What the child cannot vouch for it says: any warning or error watchdog
logs (an inotify queue overflow loses events), an exception in one of its
threads, and running on watchdog's polling observer (where inotify is not
available or out of watches): polling sees a change only at its next round,
so no barrier is possible.
"""

from __future__ import annotations

import contextlib
import logging
import marshal
import os
import select
import signal
import threading
import time
import warnings
from pathlib import Path
from typing import Any, NamedTuple

from ..errors import SiteError

SENTINEL_PREFIX = ".sitegen-barrier-"
LENGTH_BYTES = 4
READY_SECONDS = 10.0
STOP_SECONDS = 1.0
POLL_SECONDS = 0.25


class FileEvent(NamedTuple):
    """One write event: its type (watchdog's event_type), whether it is about a folder, the paths it names.

    The kind ``unsure`` (paths empty) says events may have been lost.
    """

    kind: str
    is_directory: bool
    paths: tuple[str, ...]


UNSURE = "unsure"


class FileEvents:
    """Events under ``trees`` (recursively), ``top`` (its files only) and ``engine`` (recursively), from a child process."""

    def __init__(self, trees: list[Path], top: Path, engine: Path):
        self.trees, self.top, self.engine = trees, top, engine
        self.pid: int | None = None
        self.polling = False
        self._pipe = -1  # events come out of it
        self._alive = -1  # the child runs until this closes
        self._buffer = b""
        self._counter = 0
        self._sentinels: set[str] = set()  # sentinel folders seen, until a barrier takes them
        self._watched: list[tuple[int, int] | None] = []  # what each tree was when it was scheduled

    def fileno(self) -> int:
        return self._pipe

    # ------------------------------------------------------------ the child

    def start(self) -> None:
        """Fork the child and wait until it watches: every write from then on will be reported."""
        self._watched = [_identity(tree) for tree in self.trees]
        pipe_out, pipe_in = os.pipe()
        alive_out, alive_in = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns into the caller's code
            status = 1
            try:
                _close_all_but(pipe_in, alive_out)
                _watch([tree for tree, found in zip(self.trees, self._watched) if found], self.top, self.engine,
                       pipe_in, alive_out)
                status = 0
            finally:
                os._exit(status)
        os.close(pipe_in)
        os.close(alive_out)
        self.pid, self._pipe, self._alive, self._buffer = pid, pipe_out, alive_in, b""
        ready = self._wait_ready()
        os.set_blocking(self._pipe, False)
        if ready is None:
            self.stop()
            raise SiteError("cannot watch: the process that watches the files did not start")
        self.polling = ready

    def _wait_ready(self) -> bool | None:
        """Whether the child polls (it says so first thing), or None if it never said."""
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            if not select.select([self._pipe], [], [], deadline - time.monotonic())[0]:
                break
            chunk = os.read(self._pipe, 1 << 16)
            if not chunk:
                return None
            self._buffer += chunk
            for message in self._messages():  # what it was unsure of before it watched, the first scan covers
                if message[0] == "ready":
                    return message[1]
        return None

    def stop(self) -> None:
        for descriptor in (self._alive, self._pipe):
            if descriptor >= 0:
                os.close(descriptor)
        self._alive = self._pipe = -1
        if self.pid is not None:
            deadline = time.monotonic() + STOP_SECONDS
            while os.waitpid(self.pid, os.WNOHANG) == (0, 0):
                if time.monotonic() > deadline:
                    os.kill(self.pid, signal.SIGKILL)
                    os.waitpid(self.pid, 0)
                    break
                time.sleep(0.005)
            self.pid = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def trees_moved(self) -> bool:
        """Whether a tree appeared, went, or was replaced since its watch was made (its events then never come)."""
        return [_identity(tree) for tree in self.trees] != self._watched

    # ------------------------------------------------------------ events

    def read(self) -> list[FileEvent]:
        """The events in the pipe now (sentinels left out); UNSURE if the child is gone, after starting another."""
        try:
            while chunk := os.read(self._pipe, 1 << 16):
                self._buffer += chunk
        except BlockingIOError:
            pass
        else:  # the end of the pipe: the child died
            self.restart()
            return [FileEvent(UNSURE, False, ())]
        events = []
        for message in self._messages():
            if message[0] != "event":
                events.append(FileEvent(UNSURE, False, ()))
                continue
            event = FileEvent(*message[1:])
            if os.path.basename(event.paths[0]).startswith(SENTINEL_PREFIX):
                self._sentinels.add(event.paths[0])
            else:
                events.append(event)
        return events

    def _messages(self) -> list[Any]:
        messages = []
        while len(self._buffer) >= LENGTH_BYTES:
            length = int.from_bytes(self._buffer[:LENGTH_BYTES], "little")
            if len(self._buffer) < LENGTH_BYTES + length:
                break
            messages.append(marshal.loads(self._buffer[LENGTH_BYTES:LENGTH_BYTES + length]))
            self._buffer = self._buffer[LENGTH_BYTES + length:]
        return messages

    def barrier(self, timeout: float) -> tuple[list[FileEvent], bool]:
        """Every event of a write made before this call, and whether that is sure (see the module's docstring)."""
        if self.polling:
            return self.read(), False
        self._counter += 1
        waiting = set()
        for tree, found in zip(self.trees, self._watched):
            if found is None:
                continue
            sentinel = os.path.join(tree, f"{SENTINEL_PREFIX}{os.getpid()}-{self._counter}")
            try:
                os.mkdir(sentinel, 0o700)
                os.rmdir(sentinel)
            except OSError:  # a tree that cannot be written to
                return self.read(), False
            waiting.add(sentinel)
        events = []
        deadline = time.monotonic() + timeout
        while True:
            events += self.read()
            if not waiting - self._sentinels or events and events[-1].kind == UNSURE:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            select.select([self._pipe], [], [], remaining)
        sure = not waiting - self._sentinels and not any(event.kind == UNSURE for event in events)
        self._sentinels.clear()
        return events, sure


def _close_all_but(*kept: int) -> None:
    """Close every descriptor but the standard ones and ``kept``: the child holds no socket or pipe of the watcher's."""
    start = 3
    for descriptor in sorted(kept):
        os.closerange(start, descriptor)
        start = descriptor + 1
    os.closerange(start, os.sysconf("SC_OPEN_MAX"))


def _identity(folder: Path) -> tuple[int, int] | None:
    """A folder's device and inode (None if it is not a folder, or a link to one: not watched)."""
    try:
        found = os.lstat(folder)
    except OSError:
        return None
    return (found.st_dev, found.st_ino) if os.path.isdir(folder) and not os.path.islink(folder) else None


# ---------------------------------------------------------------- in the child

def _watch(trees: list[Path], top: Path, engine: Path, pipe: int, alive: int) -> None:
    """Run watchdog, writing each write event down ``pipe``, until ``alive`` reaches its end."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the watcher, which stops this process
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    from watchdog.events import (DirCreatedEvent, DirDeletedEvent, DirMovedEvent, FileAttribEvent, FileClosedEvent,
                                 FileCreatedEvent, FileDeletedEvent, FileModifiedEvent, FileMovedEvent,
                                 FileSystemEventHandler)
    from watchdog.observers import Observer
    from watchdog.observers.polling import PollingObserver

    from ..file_events import written_paths

    lock = threading.Lock()

    def send(message: tuple) -> None:
        data = marshal.dumps(message)
        with lock:
            try:
                os.write(pipe, len(data).to_bytes(LENGTH_BYTES, "little") + data)
            except OSError:  # the watcher is gone
                os._exit(0)

    class Forward(FileSystemEventHandler):
        def on_any_event(self, event: Any) -> None:
            written = written_paths(event)
            if written is not None:
                send(("event", event.event_type, event.is_directory, tuple(written[0])))

    class Unsure(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            send((UNSURE, record.getMessage()))

    watchdog_log = logging.getLogger("watchdog")
    watchdog_log.addHandler(Unsure(logging.WARNING))
    watchdog_log.propagate = False  # nothing on the terminal: the watcher scans everything instead
    # Its warnings too, such as a watch added again for a folder moved away and back.
    warnings.showwarning = lambda message, category, *_, **__: send((UNSURE, f"{category.__name__}: {message}"))
    threading.excepthook = lambda found: send((UNSURE, f"{found.exc_type.__name__}: {found.exc_value}"))
    # Writes only: with reads too, every file a freeze reads would come down the pipe.
    written = [FileCreatedEvent, FileModifiedEvent, FileAttribEvent, FileDeletedEvent, FileMovedEvent,
               FileClosedEvent, DirCreatedEvent, DirDeletedEvent, DirMovedEvent]

    def observe(observer: Any) -> None:
        handler = Forward()
        for tree in [*trees, engine]:
            observer.schedule(handler, str(tree), recursive=True, event_filter=written)
        observer.schedule(handler, str(top), recursive=False, event_filter=written)
        observer.start()

    polling = False
    try:
        observe(Observer())
    except OSError:  # e.g. out of inotify watches: poll instead
        observe(PollingObserver(timeout=POLL_SECONDS))
        polling = True
    send(("ready", polling))
    with contextlib.suppress(OSError):
        while os.read(alive, 1):
            pass
