"""The application factory: one Flask app per project, configured explicitly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask, current_app
from jinja2 import StrictUndefined

from .content import Content


def create_app(
    root: Path,
    content: Content,
    *,
    base_url: str | None = None,
    live: bool = False,
    config: dict[str, Any] | None = None,
) -> Flask:
    """Build the site's app for the project in ``root``.

    ``base_url`` (default: the one in content/site.yaml) is where the site
    will be published; its path is the prefix of every link. ``live`` adds
    the preview-only pages of sitegen/live.py (login, upload, API, cookie);
    the app that freezes is made without them.
    """
    root = Path(root).resolve()
    app = Flask(
        "sitegen",
        root_path=str(root),
        template_folder=str(root / "templates"),
        static_folder=str(root / "static"),
        instance_path=str(root / "instance"),
    )
    app.config.update(
        SITE_ROOT=root,
        SITE_BASE_URL=base_url or content.site.base_url,
    )
    app.config.update(config or {})
    app.extensions["site_content"] = content

    # The tutorial's Jinja dialect: `# if x` line statements and `## note` line comments.
    app.jinja_options = {
        **app.jinja_options,
        "line_statement_prefix": "#",
        "line_comment_prefix": "##",
        "undefined": StrictUndefined,
        "trim_blocks": True,
        "lstrip_blocks": True,
    }
    app.jinja_env.globals.update(len=len)

    from . import pages
    from .contained import contain

    contain(app, root)  # no template or static file from outside the project

    app.register_blueprint(pages.blueprint)
    if live:
        from .live import views as live_pages

        live_pages.init_app(app)
    return app


def site_content() -> Content:
    """The content the current app serves."""
    return current_app.extensions["site_content"]
