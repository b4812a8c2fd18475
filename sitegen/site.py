"""Site: what a site declares in its own site.py — collections, settings, routes, template helpers.

Declaring is cheap and imports neither Flask nor pydantic: ``python site.py
freeze`` with nothing to do never loads them. The app factory (sitegen/app.py)
turns the declarations into a Flask app; the content loader turns the record
classes into pydantic validators when it first parses a file.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from .content.model import Record, Settings
from .errors import SiteError

COLLECTION_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")


class Collection(NamedTuple):
    """A folder of records under content/, each a file checked against ``model``."""

    name: str
    model: type[Record]
    listing: str | None = None  # the URL of the listing pages, e.g. "/events/"
    per_page: int | None = None  # records on one listing page; None: all on one page
    template: str | None = None  # the listing's template
    api: bool = False  # served by the preview's JSON API

    @property
    def folder(self) -> str:
        return f"content/{self.name}"


class Route(NamedTuple):
    rule: str
    view: Callable[..., Any]
    endpoint: str
    methods: tuple[str, ...] = ("GET",)


class Site:
    """A site's declarations; ``Site(__file__)`` takes content/, templates/ and static/ beside that file."""

    def __init__(self, file: str | os.PathLike, raw_html: bool = False):
        self.file = file
        self.raw_html = raw_html  # whether Markdown fields may carry raw HTML (escaped otherwise)
        self.collections: dict[str, Collection] = {}
        self.settings_model: type[Settings] = Settings
        self.routes: list[Route] = []
        self.template_filters: dict[str, Callable[..., Any]] = {}
        self.template_globals: dict[str, Callable[..., Any]] = {}
        path = Path(file).resolve()
        self.root = path.parent if path.suffix == ".py" else path

    # ------------------------------------------------------------ declarations

    def collection(self, name: str, *, listing: str | None = None, per_page: int | None = None,
                   template: str | None = None, api: bool = False) -> Callable[[type[Record]], type[Record]]:
        """Declare the records in content/NAME/ as instances of the decorated class.

        ``listing`` adds listing pages at that URL (``/events/``, then
        ``/events/page/2/`` ... when ``per_page`` is set), rendered with
        ``template`` (default ``NAME.html``); ``api`` serves the records as
        JSON in the preview.
        """
        if not COLLECTION_NAME.match(name):
            raise SiteError(f"collection name {name!r}: use lowercase letters, digits and underscores")
        if listing is not None and not (listing.startswith("/") and listing.endswith("/")):
            raise SiteError(f"collection {name!r}: listing {listing!r} must start and end with '/'")
        if per_page is not None and per_page < 1:
            raise SiteError(f"collection {name!r}: per_page must be at least 1")

        def declare(model: type[Record]) -> type[Record]:
            if not (isinstance(model, type) and issubclass(model, Record)):
                raise SiteError(f"collection {name!r}: {model!r} must be a subclass of sitegen.Record")
            if name in self.collections:
                raise SiteError(f"collection {name!r} is declared twice")
            self.collections[name] = Collection(name, model, listing, per_page,
                                                template or f"{name}.html" if listing else template, api)
            return model

        return declare

    def settings(self, model: type[Settings]) -> type[Settings]:
        """Declare the fields of content/site.yaml beyond title, base_url and nav."""
        if not (isinstance(model, type) and issubclass(model, Settings)):
            raise SiteError(f"site settings {model!r} must be a subclass of sitegen.Settings")
        self.settings_model = model
        return model

    def route(self, rule: str, *, endpoint: str | None = None) -> Callable[[Callable], Callable]:
        """A page of the site, as Flask's ``app.route`` (GET only: every page is frozen).

        A parameter typed with a collection's name (``<events:event>``) receives
        that record, and freeze makes one page per record.
        """

        def register(view: Callable) -> Callable:
            self.routes.append(Route(rule, view, endpoint or view.__name__))
            return view

        return register

    def template_filter(self, name: str | None = None) -> Callable[[Callable], Callable]:
        def register(function: Callable) -> Callable:
            self.template_filters[name or function.__name__] = function
            return function

        return register

    def template_global(self, name: str | None = None) -> Callable[[Callable], Callable]:
        def register(function: Callable) -> Callable:
            self.template_globals[name or function.__name__] = function
            return function

        return register

    # ------------------------------------------------------------ use

    def records(self, name: str) -> Any:
        """The records of collection ``name`` in the app serving the current request."""
        from .content.loader import current_content

        return current_content().collections[name]

    def collection_of(self, model: type) -> Collection | None:
        for collection in self.collections.values():
            if collection.model is model:
                return collection
        return None

    def page_names(self) -> list[str]:
        """What a nav entry in content/site.yaml may name: a page without parameters, or a listing."""
        names = [route.endpoint for route in self.routes if "<" not in route.rule]
        return names + [name for name, collection in self.collections.items() if collection.listing]

    def cli(self, args: list[str] | None = None) -> None:
        """Run the command line: ``python site.py preview | freeze | add-account ...``."""
        from .freeze_command import plain_freeze_arguments, prepare, run_plain_freeze

        arguments = plain_freeze_arguments(sys.argv[1:] if args is None else args)
        if arguments is not None:
            prepare()
            run_plain_freeze(self, arguments)
            return
        from .cli import run

        run(self, args)


SITE_FILE = "site.py"


def load_site(root: Path) -> Site:
    """The Site declared by ``root/site.py``, loaded by path (a module named ``site`` cannot be imported)."""
    path = Path(root).resolve() / SITE_FILE
    if not path.is_file():
        raise SiteError(f"{path}: no site.py here; a site declares itself in site.py")
    name = f"sitegen_site_{abs(hash(str(path))):x}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # record classes resolve their annotations through it
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # a mistake in site.py: one line naming its line, as for content
        del sys.modules[name]
        raise SiteError(_site_file_error(exc, path)) from None
    except BaseException:
        del sys.modules[name]
        raise
    sites = [value for value in vars(module).values() if isinstance(value, Site)]
    if len(sites) != 1:
        raise SiteError(f"{path}: expected one Site(...) at the top level, found {len(sites)}")
    return sites[0]


def _site_file_error(exc: Exception, path: Path) -> str:
    """``site.py:LINE: NameError: ...``: where in site.py the error arose (the last line of it in the traceback)."""
    import traceback  # here: a site that loads never needs it (2 ms)

    if isinstance(exc, SyntaxError) and exc.filename == str(path):
        return f"{SITE_FILE}:{exc.lineno}: {type(exc).__name__}: {exc.msg}"
    if isinstance(exc, SiteError):
        return f"{SITE_FILE}: {exc.format_message()}"
    lines = [frame.lineno for frame in traceback.extract_tb(exc.__traceback__) if frame.filename == str(path)]
    where = f"{SITE_FILE}:{lines[-1]}" if lines else SITE_FILE
    return f"{where}: {type(exc).__name__}: {exc}"

