"""The pages blueprint: everything here is frozen into build/.

Every route is a GET without side effects, and every parameterized route has
a URL generator in freeze.py fed from the same content.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, render_template, request, url_for

from .app import site_content

blueprint = Blueprint("pages", __name__)


@blueprint.app_context_processor
def site_globals() -> dict:
    return {"site": site_content().site, "absolute_url": absolute_url}


@blueprint.app_template_filter("initials")
def initials(name: str) -> str:
    """Up to two initials for a name's avatar: 'Guido van Rossum' -> 'GR'."""
    words = [word for word in name.split() if word[:1].isupper()] or name.split()
    return "".join(word[0] for word in (words[:1] + words[1:][-1:])).upper()


def absolute_url(endpoint: str, **values) -> str:
    """The published URL of a page: the site's base URL, not the serving host.

    Preview and freeze print the same sitemap and canonical links this way.
    """
    path = url_for(endpoint, **values)[len(request.script_root):]
    return current_app.config["SITE_BASE_URL"].rstrip("/") + path


@blueprint.get("/")
def index():
    content = site_content()
    return render_template("index.html", users=list(content.users.values()),
                           stores=list(content.stores.values()))


@blueprint.get("/about/")
def about():
    return render_template("about.html")


@blueprint.get("/users/")
def users():
    return render_template("users.html", users=list(site_content().users.values()))


@blueprint.get("/users/<username>/")
def user_profile(username: str):
    user = site_content().users.get(username)
    if user is None:
        abort(404)
    return render_template("profile.html", user=user, username=user.username,
                           date=user.joined, awards=user.awards)


@blueprint.get("/stores/")
def stores():
    return render_template("stores.html", stores=list(site_content().stores.values()))


@blueprint.get("/stores/<city>/")
def storefront(city: str):
    store = site_content().stores.get(city)
    if store is None:
        return render_template("store_missing.html", city=city), 404
    return render_template("store.html", store=store)


@blueprint.get("/404.html")
def not_found_page():
    """The page a static host shows for a missing URL (frozen as build/404.html)."""
    return render_template("404.html")


@blueprint.app_errorhandler(404)
def not_found(error):
    return render_template("404.html"), 404


@blueprint.get("/sitemap.xml")
def sitemap():
    content = site_content()
    pages = [absolute_url(endpoint) for endpoint in
             ("pages.index", "pages.about", "pages.users", "pages.stores")]
    pages += [absolute_url("pages.user_profile", username=name) for name in content.users]
    pages += [absolute_url("pages.storefront", city=slug) for slug in content.stores]
    xml = render_template("sitemap.xml", pages=pages)
    return Response(xml, mimetype="application/xml")


@blueprint.get("/robots.txt")
def robots():
    text = render_template("robots.txt", sitemap_url=absolute_url("pages.sitemap"))
    return Response(text, mimetype="text/plain")
