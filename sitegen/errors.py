"""Errors the CLI reports as one line each (no traceback) before exiting 1."""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

import click


class SiteError(click.ClickException):
    """A failure the user can fix; its message is printed as-is."""

    def show(self, file=None) -> None:
        click.echo(self.format_message(), file=file or sys.stderr)


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


def describe_template_error(exc: BaseException, templates_dir: Path) -> str | None:
    """Locate a Jinja error as ``templates/x.html:LINE: message``, or None.

    Syntax errors carry their own location; runtime errors (an undefined
    variable, say) are found through the template frames that Jinja writes
    into the traceback.
    """
    from jinja2 import TemplateError, TemplateSyntaxError

    if not isinstance(exc, TemplateError):
        return None
    message = exc.message or type(exc).__name__
    root = templates_dir.parent
    if isinstance(exc, TemplateSyntaxError) and exc.filename:
        return f"{_relative(exc.filename, root)}:{exc.lineno}: {message}"
    templates = str(templates_dir.resolve())
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename and str(Path(frame.filename).resolve()).startswith(templates):
            return f"{_relative(frame.filename, root)}:{frame.lineno}: {message}"
    return f"{templates_dir.name}/: {message}"


def _relative(filename: str, root: Path) -> str:
    path = Path(filename).resolve()
    try:
        return path.relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)
