"""Errors the CLI reports as one line each (no traceback) before exiting 1.

They need no click: a freeze with nothing to do runs without it (see
sitegen/freeze_command.py); sitegen/cli.py shows them as click's errors.
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path


def missing_libraries(names: str) -> str:
    """The one line for a Python that lacks libraries sitegen needs (``python site.py`` outside its venv)."""
    return (f"error: {sys.executable} lacks {names}, which sitegen needs: install the project "
            "(python3 -m venv .venv && .venv/bin/pip install -e .) and run .venv/bin/python site.py")


class SiteError(Exception):
    """A failure the user can fix; its message is printed as-is."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def format_message(self) -> str:
        return self.message


class ContentError(Exception):
    """One problem in one content file, located as ``path:line:col``."""

    def __init__(self, path: str, line: int, column: int, message: str):
        super().__init__(f"{path}:{line}:{column}: {message}")
        self.path, self.line, self.column, self.message = path, line, column, message


class ContentErrors(SiteError):
    """Every content problem of a run, reported together."""

    def __init__(self, errors: list[ContentError]):
        self.errors = sorted(errors, key=lambda e: (e.path, e.line, e.column))
        super().__init__("\n".join(str(e) for e in self.errors))


def describe_os_error(exc: BaseException, dest: Path, root: Path | None = None) -> str:
    """A failure of the operating system while freezing the project at ``root`` into ``dest``, as one line.

    A full disk is named as the disk of the destination (the page being
    written when it filled up says nothing about what to free). A file of
    the project's sources, which a freeze only reads, is named as the
    project shows it; anything else is a failure to write the build.
    """
    if not isinstance(exc, OSError):
        return f"{type(exc).__name__}: {exc}"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"no space left on the disk of {dest}"
    if exc.errno in (errno.EMFILE, errno.ENFILE):  # the process's limit, or the system's: not a file's fault
        return f"too many open files ({exc.strerror}): raise the limit (ulimit -n) or use fewer --jobs"
    source = _source_path(exc.filename, root)
    if source is not None:
        return f"cannot read {source}: {exc.strerror or exc}"
    where = f"{exc.filename}: " if exc.filename else ""
    return f"cannot write {dest}: {where}{exc.strerror or exc}"


def _source_path(filename: object, root: Path | None) -> str | None:
    """``filename`` as a path in the project, if it is in content/, templates/ or static/."""
    if root is None or not isinstance(filename, (str, os.PathLike)):
        return None
    relative = os.path.relpath(os.path.abspath(filename), root)
    return relative if relative.split(os.sep, 1)[0] in ("content", "templates", "static") else None


def describe_template_error(exc: BaseException, templates_dir: Path) -> str | None:
    """Locate a Jinja error as ``templates/x.html:LINE: message``, or None.

    Syntax errors carry their own location; runtime errors (an undefined
    variable, say) are found through the template frames that Jinja writes
    into the traceback. A refused template (sitegen/contained.py) says it was
    refused; a SiteError raised while rendering (a static file that is a
    link leading outside the project) is already one line.
    """
    import traceback

    from jinja2 import TemplateError, TemplateNotFound, TemplateSyntaxError

    if isinstance(exc, SiteError):
        return exc.format_message()
    if not isinstance(exc, TemplateError):
        return None
    message = exc.message or type(exc).__name__
    if isinstance(exc, TemplateNotFound) and message == exc.name:
        message = f"template {exc.name!r} not found"
    root = templates_dir.parent
    located = getattr(exc, "located", None)
    if located:
        return f"{located}: {message}"
    if isinstance(exc, TemplateSyntaxError) and exc.filename:
        return f"{_relative(exc.filename, root)}:{exc.lineno}: {message}"
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        shown = frame.filename and _relative(frame.filename, root)
        if shown and shown.startswith(f"{templates_dir.name}/"):
            return f"{shown}:{frame.lineno}: {message}"
    return f"{templates_dir.name}/: {message}"


def _relative(filename: str, root: Path) -> str:
    """A file as the project names it; a link is named, never resolved to where it leads."""
    path = os.path.abspath(filename)
    for top in dict.fromkeys((os.path.abspath(root), os.path.realpath(root))):
        if path.startswith(os.path.join(top, "")):
            return path[len(top) + 1:].replace(os.sep, "/")
    return path
