"""The application factory: one Flask app for a site and its content, configured explicitly."""

from __future__ import annotations

from typing import Any

from flask import Flask
from jinja2 import StrictUndefined

from .content.loader import Content
from .site import Site


def create_app(
    site: Site,
    content: Content,
    *,
    base_url: str | None = None,
    live: bool = False,
    config: dict[str, Any] | None = None,
) -> Flask:
    """Build the app of ``site`` serving ``content``.

    ``base_url`` (default: the one in content/site.yaml) is where the site
    will be published; its path is the prefix of every link. ``live`` adds
    the preview-only pages of sitegen/live/ (login, upload, API, cookie);
    the app that freezes is made without them.
    """
    root = site.root
    app = Flask(
        "sitegen",
        root_path=str(root),
        template_folder=str(root / "templates"),
        static_folder=str(root / "static"),
        instance_path=str(root / "instance"),
    )
    app.config.update(
        SITE_ROOT=root,
        SITE_BASE_URL=base_url or content.settings.base_url,
    )
    app.config.update(config or {})
    app.extensions["site_content"] = content
    app.extensions["sitegen_site"] = site

    # The tutorial's Jinja dialect: `# if x` line statements and `## note` line comments.
    app.jinja_options = {
        **app.jinja_options,
        "line_statement_prefix": "#",
        "line_comment_prefix": "##",
        "undefined": StrictUndefined,
        "trim_blocks": True,
        "lstrip_blocks": True,
    }
    app.jinja_env.globals.update(len=len, **site.template_globals)
    app.jinja_env.filters.update(site.template_filters)

    from . import builtin_pages, routes
    from .contained import contain

    contain(app, root)  # no template or static file from outside the project

    routes.register_site(app, site)
    builtin_pages.init_app(app)
    if live:
        from .live import views as live_pages

        live_pages.init_app(app)
    return app
