"""Nothing from outside the project reaches build/ or an error message.

A symbolic link in content/, templates/ or static/ is followed when it
leads to a file inside the project's root, and refused, by one line naming
the link, when it leads outside: the target is never opened, so none of its
content can be published or printed. The same rule holds for the freeze
(which checks every link before rendering, see sitegen/freeze/incremental.py),
the preview, the template loader and the static files.

Reading a template or a static file for a freeze also notes the digest of
the bytes read (``READ_LOG`` in the app's extensions): the freeze records
that version of the file, the one it rendered with, never another.
"""

from __future__ import annotations

import os
import posixpath
from io import BytesIO
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, TemplateNotFound, TemplateSyntaxError

from .errors import SiteError
from .freeze.incremental import digest
from .links import OUTSIDE_LINK, leads_outside

READ_LOG = "sitegen.read_log"  # app.extensions key: project path -> digest of the bytes read, b"" when two differ


class OutsideLink(SiteError):
    """A link in the project leading outside it, named as the project shows it."""

    def __init__(self, shown: str):
        super().__init__(f"{shown}: {OUTSIDE_LINK}")


def note_read(log: dict[str, bytes] | None, path: str, data: bytes) -> None:
    """Remember the digest of what was read for ``path``; two different versions read make it unknown."""
    if log is not None:
        found = digest(data)
        if log.setdefault(path, found) != found:
            log[path] = b""


class RefusedTemplate(TemplateSyntaxError):
    """A template name that leaves templates/, or a template that is a link leading outside the project.

    A syntax error so that every place that reports template errors reports
    this one (the preview's check of all templates, the freeze's workers);
    ``located`` is the whole place when it is the file itself.
    """

    def __init__(self, message: str, name: str, located: str | None = None):
        super().__init__(message, 1, name)
        self.translated = True  # keep the real frames: they locate the include that asked for it
        self.located = located


class ContainedLoader(FileSystemLoader):
    """Jinja's FileSystemLoader, refusing links that lead outside the project and noting what it read.

    It reads bytes (for the digest) and decodes them as Jinja's text-mode
    read does, universal newlines included.
    """

    def __init__(self, folder: Path, root: Path, extensions: dict[str, Any]):
        super().__init__(str(folder))
        self.folder, self.root, self.extensions = folder, root, extensions

    def get_source(self, environment: Any, template: str) -> tuple[str, str, Any]:
        pieces = template.split("/")
        if any(piece == os.path.pardir or os.sep in piece or (os.path.altsep and os.path.altsep in piece)
               for piece in pieces):
            raise RefusedTemplate(f"refused template {template!r}: its name leads outside templates/",
                                  template)
        filename = posixpath.join(str(self.folder), *(piece for piece in pieces if piece not in ("", ".")))
        if leads_outside(filename, self.root):
            raise RefusedTemplate(OUTSIDE_LINK, template, located=f"templates/{template}")
        if not os.path.isfile(filename):
            raise TemplateNotFound(template)
        with open(filename, "rb") as file:
            data = file.read()
        mtime = os.path.getmtime(filename)
        note_read(self.extensions.get(READ_LOG), f"templates/{'/'.join(p for p in pieces if p not in ('', '.'))}",
                  data)
        contents = data.decode(self.encoding).replace("\r\n", "\n").replace("\r", "\n")

        def uptodate() -> bool:
            try:
                return os.path.getmtime(filename) == mtime
            except OSError:
                return False

        return contents, os.path.normpath(filename), uptodate


def contain(app: Any, root: Path) -> None:
    """Make ``app`` load templates and serve static files only from inside the project."""
    from flask import abort, send_file
    from werkzeug.security import safe_join

    app.jinja_loader = ContainedLoader(Path(app.template_folder), root, app.extensions)
    static_folder = app.static_folder

    def static(filename: str) -> Any:
        path = safe_join(static_folder, filename)
        if path is None:
            abort(404)
        log = app.extensions.get(READ_LOG)
        if leads_outside(path, root):
            if log is None:  # the preview: refuse this file alone, without an error that outlives the link
                abort(403, description=f"static/{filename}: {OUTSIDE_LINK}")
            raise OutsideLink(f"static/{filename}")
        if log is None or not os.path.isfile(path):
            return app.send_static_file(filename)
        with open(path, "rb") as file:  # freezing: serve the very bytes whose digest is noted
            data = file.read()
        note_read(log, f"static/{filename}", data)
        return send_file(BytesIO(data), download_name=posixpath.basename(filename),
                         max_age=app.get_send_file_max_age(filename))

    app.view_functions["static"] = static
