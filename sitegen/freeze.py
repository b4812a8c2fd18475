"""Freeze the site into static files with Frozen-Flask, safely.

Frozen-Flask does the crawling and writing; this module adds what it leaves
out: a URL generator per parameterized page, a containment check on every
output path, warnings treated as errors, the real cause of a failing page,
and an all-or-nothing swap so a failed freeze never touches the last build.
"""

from __future__ import annotations

import os
import shutil
import time
import unicodedata
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from flask import Flask
from flask_frozen import Freezer, FrozenFlaskWarning

from .app import create_app
from .content import Content, load_content
from .errors import SiteError, describe_template_error

MARKER = ".sitegen-build"
MARKER_TEXT = "Made by `python site.py freeze`; this folder is replaced on every freeze.\n"
# Editor leftovers, and the assets of the preview-only pages (sitegen/live.py).
STATIC_IGNORE = [".*", "*~", "*.swp", "*.swx", "*.tmp",
                 "styles/login-style.css", "scripts/login-script.js"]
MAX_PATH_SEGMENT = 200


@dataclass(frozen=True)
class FreezeResult:
    pages: int
    seconds: float
    destination: Path


class CheckedFreezer(Freezer):
    """A Freezer that refuses any URL whose file would escape or collide.

    Frozen-Flask joins the decoded URL to the destination as it is; a slug
    such as ``..`` or a case twin would overwrite another page.
    """

    def __init__(self, app: Flask):
        super().__init__(app)
        self.current_url: str | None = None
        self._files: dict[str, str] = {}

    def urlpath_to_filepath(self, path: str) -> str:
        self.current_url = path
        relative = super().urlpath_to_filepath(path)
        for segment in relative.split("/"):
            if segment in ("", ".", "..") or "\\" in segment or "\0" in segment:
                raise SiteError(f"refusing URL {path!r}: it does not map to a file inside the build")
            if len(segment.encode()) > MAX_PATH_SEGMENT:
                raise SiteError(f"refusing URL {path!r}: a path segment is over {MAX_PATH_SEGMENT} bytes")
        folded = unicodedata.normalize("NFC", relative).casefold()
        twin = self._files.setdefault(folded, path)
        if twin != path:
            raise SiteError(f"URLs {twin!r} and {path!r} would be written to the same file")
        return relative


def register_generators(freezer: Freezer, content: Content) -> None:
    """One generator per parameterized endpoint, fed from the content."""

    @freezer.register_generator
    def user_profiles():
        for username in content.users:
            yield "pages.user_profile", {"username": username}

    @freezer.register_generator
    def storefronts():
        for city in content.stores:
            yield "pages.storefront", {"city": city}

    @freezer.register_generator
    def not_found_page():
        yield "pages.not_found_page", {}


def check_destination(dest: Path, root: Path) -> None:
    """Refuse to replace anything that is not one of our own builds."""
    sources = [root / name for name in ("content", "templates", "static")]
    if root.is_relative_to(dest) or any(dest.is_relative_to(source) for source in sources):
        raise SiteError(f"refusing to freeze into {dest}: it holds the project's own files")
    if dest.exists() and not dest.is_dir():
        raise SiteError(f"refusing to freeze into {dest}: it is a file")
    if dest.is_dir() and any(dest.iterdir()) and not (dest / MARKER).is_file():
        raise SiteError(
            f"refusing to freeze into {dest}: it is not empty and was not made by a freeze "
            f"(no {MARKER} file); empty it or choose another --dest"
        )


def freeze_site(
    root: Path,
    dest: Path,
    *,
    base_url: str | None = None,
    progress: Callable[[int, str], None] | None = None,
) -> FreezeResult:
    """Freeze the project in ``root`` into ``dest``, replacing it only on success."""
    started = time.perf_counter()
    root, dest = Path(root).resolve(), Path(dest).resolve()
    check_destination(dest, root)
    content = load_content(root)
    app = create_app(root, content, base_url=base_url)
    staging = dest.parent / f".{dest.name}.staging"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    app.config.update(
        FREEZER_DESTINATION=str(staging),
        FREEZER_BASE_URL=app.config["SITE_BASE_URL"],
        FREEZER_STATIC_IGNORE=STATIC_IGNORE,
        FREEZER_REMOVE_EXTRA_FILES=False,
        PROPAGATE_EXCEPTIONS=True,
    )
    freezer = CheckedFreezer(app)
    register_generators(freezer, content)
    try:
        pages = _run(freezer, root, progress)
        (staging / MARKER).write_text(MARKER_TEXT)
        _swap_into_place(staging, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return FreezeResult(pages, time.perf_counter() - started, dest)


def _run(freezer: CheckedFreezer, root: Path, progress) -> int:
    pages = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", FrozenFlaskWarning)
        try:
            for page in freezer.freeze_yield():
                pages += 1
                if progress:
                    progress(pages, page.url)
        except SiteError:
            raise
        except FrozenFlaskWarning as exc:
            raise SiteError(f"freeze failed: {exc}") from None
        except Exception as exc:
            where = f" (while freezing {freezer.current_url})" if freezer.current_url else ""
            described = describe_template_error(exc, root / "templates")
            if described is None:
                described = f"{type(exc).__name__}: {exc}"
            raise SiteError(f"{described}{where}") from exc
    return pages


def _swap_into_place(staging: Path, dest: Path) -> None:
    """Put the new build where the old one was, then remove the old one."""
    if not dest.exists():
        os.rename(staging, dest)
        return
    retired = dest.parent / f".{dest.name}.previous"
    if retired.exists():
        shutil.rmtree(retired)
    os.rename(dest, retired)
    os.rename(staging, dest)
    shutil.rmtree(retired)
