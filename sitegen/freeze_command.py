"""``python site.py freeze``: the command's body, and its usual command lines run without click.

Importing click costs a process about 35 ms of CPU (measured: ``python -c
"import click"`` against an empty run), a fifth of a freeze with nothing to
do. So a command line made only of the freeze's own options, each given in
its plainest form (``--root DIR freeze --dest DIR --jobs 2 --clean --watch``), is run
here with the same meaning, output and one-line errors; any other (help, a
mistake, another command, ``--dest=DIR``, a repeated option) goes to click,
which stays the one that explains the command line (sitegen/cli.py).
"""

from __future__ import annotations

import atexit
import gc
import importlib.util
import os
import signal
import sys
from pathlib import Path
from typing import Any

from .base_url import normalized_base_url
from .errors import missing_libraries

# What the commands import when they run (sitegen's own imports are checked when site.py imports it).
REQUIRED_MODULES = ("flask", "flask_frozen", "flask_wtf", "jinja2", "livereload", "markdown_it", "pydantic",
                    "tornado", "watchdog", "werkzeug", "yaml")
# The freeze's options that take a value, by the name of its parameter; and its flags.
VALUE_OPTIONS = {"--dest": "dest", "--base-url": "base_url", "--jobs": "jobs", "-j": "jobs"}
FLAG_OPTIONS = {"--clean": "clean", "--watch": "watch"}


def prepare() -> None:
    """What every command does first: refuse to run without the libraries, and skip a useless collection at exit."""
    missing = [name for name in REQUIRED_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        sys.exit(missing_libraries(", ".join(missing)))
    # When the process ends, Python runs one more cycle collection over every
    # object left, such as a freeze's state: tens of milliseconds for nothing.
    atexit.register(gc.freeze)


def plain_freeze_arguments(args: list[str]) -> dict[str, Any] | None:
    """The parameters of a freeze command line that click would read the same way; None for any other."""
    root = None
    if args[:1] == ["--root"] and len(args) > 1 and _plain_value(args[1]) and _readable_folder(args[1]):
        root, args = Path(args[1]), args[2:]
    if args[:1] != ["freeze"]:
        return None
    found: dict[str, Any] = {"root": root, "dest": None, "base_url": None, "jobs": None, "clean": False,
                             "watch": False}
    given = set()
    rest = iter(args[1:])
    for option in rest:
        name = VALUE_OPTIONS.get(option) or FLAG_OPTIONS.get(option)
        if name is None or name in given:
            return None
        given.add(name)
        if option in FLAG_OPTIONS:
            found[name] = True
            continue
        value = next(rest, None)
        if value is None or not _plain_value(value):
            return None
        if name == "jobs":
            if not (value.isascii() and value.isdigit() and int(value) >= 1):
                return None
            found[name] = int(value)
        elif name == "base_url":
            try:
                found[name] = normalized_base_url(value)
            except ValueError:  # click says why
                return None
        else:
            found[name] = Path(value)
    return found


def _readable_folder(value: str) -> bool:
    """Whether click's check of ``--root`` (an existing, readable folder) passes."""
    return os.path.isdir(value) and os.access(value, os.R_OK)


def _plain_value(value: str) -> bool:
    """A value click takes as it is: not empty and not looking like an option."""
    return bool(value) and not value.startswith("-")


def run_plain_freeze(site: Any, arguments: dict[str, Any]) -> None:
    """Run a freeze parsed by plain_freeze_arguments, ending as click's command line would on an error."""
    from .errors import SiteError
    from .site import load_site

    try:
        root = arguments.pop("root")
        freeze(load_site(root) if root is not None else site, **arguments)
    except SiteError as exc:
        print(exc.format_message(), file=sys.stderr)
        sys.exit(1)
    except (KeyboardInterrupt, EOFError):
        print("\nAborted!", file=sys.stderr)
        sys.exit(1)
    except BrokenPipeError:  # the reader of the output went away: quietly, as click does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)


def freeze(site: Any, dest: Path | None, base_url: str | None, jobs: int | None, clean: bool,
           watch: bool = False) -> None:
    """Write every page of the site into static files (only the changed ones after the first time).

    With ``watch``, go on freezing after every save (sitegen/freeze/watch.py);
    without, hand the freeze to such a watcher of the same build if one runs
    (sitegen/freeze/delegate.py, before Flask is imported), else freeze here.
    """
    dest = dest or site.root / "build"
    if watch:
        from .freeze.watch import watch_and_freeze

        watch_and_freeze(site, dest, base_url=base_url, jobs=jobs, clean=clean)
        return
    from .freeze.delegate import hand_over

    status = hand_over(site.root, dest, base_url, clean)
    if status is not None:  # the watcher wrote the freeze's line (or its error) to this process's output
        if status:
            sys.exit(status)
        return
    from .errors import SiteError
    from .freeze.console import freeze_and_report

    try:
        previous = signal.signal(signal.SIGTERM, _stop)
    except ValueError:  # not the main thread (a program that runs the command in one): signals are not its own
        previous = None
    try:
        freeze_and_report(site, dest, out=sys.stdout, err=sys.stderr, base_url=base_url, jobs=jobs, clean=clean)
    except MemoryError:
        raise SiteError("the freeze ran out of memory; fewer --jobs use less") from None
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _stop(number: int, frame: Any) -> None:
    """SIGTERM: stop as Ctrl-C does, the staging removed and a commit under way undone, with the usual status."""
    raise SystemExit(128 + number)
