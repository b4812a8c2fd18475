"""sitegen: a data-driven site from YAML, Jinja and Flask, previewed live and frozen to static files.

What a site's own site.py uses::

    from sitegen import Markdown, Record, Site, render_template

Declaring a site imports neither Flask nor pydantic, so a command with
nothing to do (a freeze of an unchanged site) starts fast; they are loaded
when a page is rendered or a file is parsed.
"""

from typing import Any

from .errors import missing_libraries

try:
    from .content.model import Markdown, NavItem, Record, Settings, StaticFile
    from .site import Site
except ModuleNotFoundError as missing:  # e.g. `python site.py` outside the virtual environment
    raise SystemExit(missing_libraries(missing.name)) from None


def render_template(template_name: str, **context: Any) -> str:
    """Flask's ``render_template``, importing Flask only when a page is rendered."""
    from flask import render_template as flask_render_template

    return flask_render_template(template_name, **context)


def abort(status: int, *args: Any, **kwargs: Any) -> None:
    """Flask's ``abort``, importing Flask only when it is called."""
    from flask import abort as flask_abort

    flask_abort(status, *args, **kwargs)


__all__ = ["Markdown", "NavItem", "Record", "Settings", "Site", "StaticFile", "abort", "render_template"]
