"""``python site.py freeze --watch``: freeze, then freeze again after every save, in one warm process.

A freeze run from the command line pays, every time, for Python's start,
the libraries' imports (Flask, Jinja, Frozen-Flask: 130-200 ms), a stat of
every source file (0.45 s at 100,000 users) and a parse of the state. The
watcher pays once: it keeps the libraries imported, the scan of the sources
(brought up to date from file events, one stat per changed file) and the
state of its last commit (sitegen/freeze/kept.py). Each freeze still goes
through freeze_site, its lock and its commit, so a failed one leaves build/
as it was, and a plain freeze run beside it waits for nothing.

The loop, on one thread: file events come from a child process
(sitegen/freeze/events.py, which says why it is a process); a burst of them
is freezed once it goes quiet (sitegen/file_events.QuietWindow), printing
the usual line, or the one-line error of bad content, and watching goes on.
Scratch files (an editor's swap file, a backup) are noted in the scan but
start no freeze by themselves. A plain ``python site.py freeze`` into the
same build is handed over on a Unix socket (sitegen/freeze/delegate.py):
before answering, the watcher passes the barrier (every save made before
the request has been seen, events.py), then freezes if anything changed, or
answers at once with the last freeze's page count.

Code: the freeze is only right with the code it was fingerprinted with
(incremental.fingerprint: the engine, the project's top-level .py files, the
libraries). Before every freeze, and on any event about the code, the
watcher compares the fingerprint on disk with its own. If they differ it
first checks, in a new interpreter, that the new site.py loads: if it does,
the watcher re-executes itself (os.execv, the same command line; the socket
stays open across it, and a client being served is asked to retry), and the
new process's first freeze renders every page (``--clean``: whatever the
state says, it may have been written by the old code); if not, it prints the
error and freezes nothing until the code is fixed. ``--clean`` applies to
the first freeze only.

Workers: an edit of a few records renders in the watcher's own process
(build.py's PARALLEL_MIN: fewer than 64 pages and files to parse); a big
change (a template every profile uses) forks worker processes as a cold
freeze does (render.py, multiprocessing's fork). That is safe because the
watcher runs no thread of its own: watchdog's threads live in the event
process (events.py), forked before anything else.

Ctrl-C (or SIGTERM) ends it quietly: the event process stops, the socket
file is removed, and a freeze that was running leaves build/ as it was.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any, TextIO

from ..errors import SiteError
from ..file_events import COMPLETE_EVENTS, QuietWindow, is_ignored
from ..site import Site
from . import incremental
from .build import FreezeResult
from .console import freeze_and_report
from .delegate import Request, WatchSocket
from .events import UNSURE, FileEvent, FileEvents
from .incremental import MARKER, STATE_FILE, BuildFolders
from .kept import KeptScan, KeptState, file_identity

TREES = ("content", "templates", "static")
ENGINE = Path(__file__).resolve().parent.parent
BARRIER_SECONDS = 1.0
# Whether the site.py on disk loads, asked of a new interpreter before the watcher becomes one.
LOAD_CHECK = """import sys
from sitegen.errors import SiteError
from sitegen.site import load_site
try:
    load_site(sys.argv[1])
except SiteError as exc:
    sys.exit(exc.format_message())
"""


def watch_and_freeze(site: Site, dest: Path, *, base_url: str | None, jobs: int | None, clean: bool) -> None:
    """Freeze ``site`` into ``dest``, then again after every save, until Ctrl-C."""
    watcher = Watcher(site, Path(dest).resolve(), base_url, jobs)
    previous = signal.signal(signal.SIGTERM, _interrupt_watcher(os.getpid()))
    try:
        watcher.run(clean)
    except KeyboardInterrupt:  # the way to stop watching: no message
        pass
    finally:
        watcher.close()
        signal.signal(signal.SIGTERM, previous)


def _interrupt_watcher(watcher: int) -> Any:
    """A SIGTERM handler: the watcher stops as on Ctrl-C; a worker it forked dies as it would have."""

    def handle(signum: int, frame: Any) -> None:
        if os.getpid() == watcher:
            raise KeyboardInterrupt
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    return handle


class Watcher:
    """One watching freeze into ``dest``: its loop, its freezes, and the requests it answers."""

    def __init__(self, site: Site, dest: Path, base_url: str | None, jobs: int | None):
        self.site, self.root, self.dest = site, site.root, dest
        self.base_url, self.jobs = base_url, jobs
        self.code = incremental.fingerprint(self.root, base_url)  # of the code this process runs
        self.state_file = BuildFolders(dest).state / STATE_FILE
        self.trees = [self.root / tree for tree in TREES]
        self.listener = WatchSocket(dest)
        self.events = FileEvents(self.trees, self.root, ENGINE)
        self.scan = KeptScan()
        self.kept = KeptState(self.scan)
        self.window = QuietWindow()
        self.dirty = True  # the sources may differ from what build/ was frozen from
        self.broken: str | None = None  # the error of the code on disk, while it does not load
        self.last: FreezeResult | None = None  # the last freeze, while it succeeded
        self.state_written: tuple[int, int, int] | None = None  # the state file as the last freeze left it

    def close(self) -> None:
        self.events.stop()
        self.listener.close()

    def run(self, clean: bool) -> None:
        self.events.start()
        self.freeze(sys.stdout, sys.stderr, clean=clean or self.listener.restarted)
        self.warm_up()
        print(f"Watching {self.root} for changes (Ctrl-C to stop)", file=sys.stderr, flush=True)
        while True:
            timeout = None if self.window.deadline is None else max(0.0, self.window.deadline - time.monotonic())
            readable, _, _ = select.select([self.events, self.listener], [], [], timeout)
            if self.events in readable:
                self.take(self.events.read())
            if self.listener in readable:
                self.serve()
            if self.window.deadline is not None and time.monotonic() >= self.window.deadline:
                self.window.close()
                if self.code_is_current() and self.dirty:
                    self.freeze(sys.stdout, sys.stderr)

    def warm_up(self) -> None:
        """Import what rendering a page needs now, not on the first save: a first freeze with nothing
        to render never imports Flask, Jinja and Frozen-Flask (a first edit handed over at 10,000 users:
        0.31-0.33 s without, 0.18-0.25 s with)."""
        from . import linkcheck, render  # noqa: F401

    # ------------------------------------------------------------ events

    def take(self, events: list[FileEvent]) -> None:
        """Note what the events change; arm the quiet window for those that should start a freeze."""
        for event in events:
            if event.kind == UNSURE:
                self.scan.forget()
                self.changed(complete=False)
                continue
            for path in event.paths:
                self._take_path(Path(path), event)

    def _take_path(self, path: Path, event: FileEvent) -> None:
        """One path an event named. The code's files only arm the window: its end compares the fingerprints."""
        complete = event.kind in COMPLETE_EVENTS
        if path.is_relative_to(ENGINE):
            if not is_ignored(path.relative_to(ENGINE)):
                self.window.note(time.monotonic(), complete)
            return
        if not path.is_relative_to(self.root):
            return
        relative = path.relative_to(self.root)
        if len(relative.parts) == 1:  # the project's own files: its code, and the trees themselves
            if relative.suffix == ".py" and not event.is_directory:
                self.window.note(time.monotonic(), complete)
            elif relative.name in TREES:
                self.events.restart()
                self.scan.forget()
                self.changed(complete)
            return
        if relative.parts[0] not in TREES:
            return
        if event.is_directory:
            self.scan.forget()
        else:
            self.scan.note(relative.as_posix())
        self.dirty = True
        # static/ is published whole (but for STATIC_IGNORE), its build/ or node_modules/ folders too
        if relative.parts[0] == "static" or not is_ignored(relative.relative_to(relative.parts[0])):
            self.changed(complete)

    def changed(self, complete: bool) -> None:
        self.dirty = True
        self.window.note(time.monotonic(), complete)

    # ------------------------------------------------------------ the code

    def code_is_current(self) -> bool:
        """Whether the code on disk is the code running; if not, restart on it (when it loads) or say why not."""
        if incremental.fingerprint(self.root, self.base_url) == self.code:
            if self.broken:  # back to the code running
                self.broken = None
            return True
        problem = new_code_problem(self.root)
        if problem is None:
            self.restart()
        if problem != self.broken:
            print(problem, file=sys.stderr, flush=True)
        self.broken = problem
        return False

    def restart(self) -> None:
        """Become a new process running the new code (the same command line; the socket carried over)."""
        self.events.stop()
        self.listener.keep_across_exec()
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, sys.orig_argv)

    # ------------------------------------------------------------ freezing

    def freeze(self, out: TextIO, err: TextIO, *, clean: bool = False, echo: bool = False) -> int:
        """Freeze now, writing its line or its error to ``out`` and ``err`` (and to the watcher's own with
        ``echo``); the exit status a cold freeze would have."""
        self.dirty = False
        if file_identity(self.state_file) != self.state_written:  # another process froze: read everything again
            self.scan.forget()
            self.kept.forget()
        if self.events.polling:  # polling misses a save that keeps a file's size and time: never vouched for
            self.scan.forget()
        errors_to = (err, sys.stderr) if echo else (err,)
        try:
            result = freeze_and_report(self.site, self.dest, out=out, err=err, base_url=self.base_url, jobs=self.jobs,
                                       clean=clean, scan=self.scan, folders=self.kept.folders)
        except SiteError as exc:
            self.last = None
            if not echo and self._overtaken():  # the freeze after those saves says what is still wrong
                return 1
            for stream in errors_to:
                print(exc.format_message(), file=stream, flush=True)
            return 1
        except Exception:  # a bug of the engine's: its traceback, and watching goes on from a clean slate
            self.last = None
            self.scan.forget()
            self.kept.forget()
            for stream in errors_to:
                traceback.print_exc(file=stream)
            return 1
        finally:
            self.state_written = file_identity(self.state_file)
        self.last = result
        if echo:
            print(result.summary(), flush=True)
        return 0

    def _overtaken(self) -> bool:
        """Whether sources were saved while the freeze ran: its failure may be about a file since
        fixed or gone (a record moved away while it was read), and the freeze they start follows.
        Only saves that start one count (an editor's swap file does not)."""
        self.take(self.events.read())
        return self.window.deadline is not None

    # ------------------------------------------------------------ delegated freezes

    def serve(self) -> None:
        request = self.listener.accept()
        if request is None:
            return
        try:
            status, exit_status = self.answer(request)
        finally:
            request.close_output()
        request.answer(status, exit_status)

    def answer(self, request: Request) -> tuple[str, int | None]:
        """Freeze for a client, as a cold freeze would at this moment: ("done", exit status), or "cold", "retry"."""
        started = time.perf_counter()
        if request.root != str(self.root):
            return "cold", None
        if incremental.fingerprint(self.root, self.base_url) != self.code:  # the code changed, whatever events say
            problem = new_code_problem(self.root)
            if problem is None:
                request.answer("retry")
                self.restart()
            print(problem, file=request.err, flush=True)
            return "done", 1
        if request.fingerprint != self.code.hex():  # other options, or another engine
            return "cold", None
        events, sure = self.events.barrier(BARRIER_SECONDS)
        self.take(events)
        moved = self.events.trees_moved()  # a tree made, removed or replaced: its watch is gone
        if moved:
            self.events.restart()
        if moved or not sure:
            self.scan.forget()
            self.dirty = True
        self.window.close()
        # A scan it cannot vouch for (a link in the sources: what it leads to changes with no event
        # at the link, and a tree that is a link is not watched) is made again, as a cold freeze would.
        if self.dirty or self.scan.found is None or self.last is None or not self._build_is_ours():
            return "done", self.freeze(request.out, request.err, echo=True)
        unchanged = FreezeResult(self.last.pages, time.perf_counter() - started, self.last.destination)
        print(unchanged.summary(), file=request.out, flush=True)
        return "done", 0

    def _build_is_ours(self) -> bool:
        """Whether build/ and the state are still as this process's last freeze left them."""
        return (self.dest / MARKER).is_file() and file_identity(self.state_file) == self.state_written


def new_code_problem(root: Path) -> str | None:
    """Why the site.py in ``root`` does not load with the engine on disk (one line), or None if it does.

    Asked of a new interpreter, importing the engine from where this one did.
    """
    path = os.pathsep.join(filter(None, [str(ENGINE.parent), os.environ.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, "-c", LOAD_CHECK, str(root)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": path}, check=False)
    if done.returncode == 0:
        return None
    lines = done.stderr.strip().splitlines()
    return lines[-1] if lines else f"site.py: the check that it loads ended with status {done.returncode}"
