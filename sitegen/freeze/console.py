"""A freeze as the command line shows it: a count of the pages on a terminal while it runs, then one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TextIO

from ..errors import SiteError
from ..site import Site
from .build import FreezeResult, freeze_site


def freeze_and_report(site: Site, dest: Path, *, out: TextIO, err: TextIO, **options: Any) -> FreezeResult:
    """freeze_site with ``options``, its progress on ``err`` if that is a terminal, its line on ``out``.

    A SiteError goes to the caller, which shows it as one line.
    """
    show_progress = err.isatty()

    def progress(done: int, total: int) -> None:
        if show_progress:
            err.write(f"\rfreezing: {done}/{total} pages")
            err.flush()

    try:
        result = freeze_site(site, dest, progress=progress, **options)
    finally:
        if show_progress:  # the count goes, so that what follows starts a clean line
            err.write("\r\033[K")
            err.flush()
    try:
        print(result.summary(), file=out, flush=True)
    except BrokenPipeError:  # its reader went away: the command ends quietly
        raise
    except OSError as exc:  # a full disk behind the output (> /dev/full): the build is done all the same
        raise SiteError(f"froze {dest}, but could not write the line that says so: {exc.strerror or exc}") from None
    return result
