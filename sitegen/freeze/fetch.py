"""Ask the app for a page as Frozen-Flask's test client would, without the client.

Frozen-Flask 1.0.2 makes a test client for every page, and the client builds
a whole request environment, runs the app through WSGI and wraps the answer
in a new response: together as much work as rendering a simple page. A
fetcher builds the environment once per base URL, changes only the path, and
runs the request the way ``Flask.wsgi_app`` does, keeping the app's own
response (``get``).

``render`` goes further for the pages a freeze writes: one request context
per fetcher, matched with a URL adapter bound once, pushed around each page
(Flask's documented ``match_request`` hook), and a view's text taken as the
page without making a Response of it. It skips only what nothing in the app
listens to (after-request functions, request signals, handlers of non-HTTP
errors; checked once), and hands any other answer (a redirect, an HTTP
error) to ``get``. That is a third of what a page cost.
tests/engine/test_freeze_fidelity.py checks both answer like the client, for
every page of the fixture sites.
"""

from __future__ import annotations

from io import BytesIO
from typing import NamedTuple
from urllib.parse import unquote

from flask import Flask, Response
from flask.ctx import RequestContext
from flask.signals import got_request_exception, request_finished, request_started
from flask.testing import EnvironBuilder
from werkzeug.exceptions import HTTPException
from werkzeug.urls import iri_to_uri

from ..base_url import PLAIN_PATH

HTML = "text/html; charset=utf-8"  # what Flask's Response says of a view's text


class Fetched(NamedTuple):
    status_code: int
    content_type: str | None
    mimetype: str | None
    data: bytes


def _wsgi_str(text: str) -> str:
    """A str as WSGI carries it: UTF-8 bytes read as Latin-1 (PEP 3333)."""
    return text.encode().decode("latin-1")


class _Prematched(RequestContext):
    """A request context whose request the fetcher matched before pushing it."""

    def match_request(self) -> None:
        """Done already, by Fetcher.render."""


def _nothing_listens_past_the_view(app: Flask) -> bool:
    """Whether skipping the Response, the request signals and error handling changes nothing seen."""
    return (app.config["PROPAGATE_EXCEPTIONS"] is True
            and not any(app.after_request_funcs.values())
            and not any(None in handlers for handlers in app.error_handler_spec.values())  # non-HTTP errors
            and not any(signal.has_receivers_for(app)
                        for signal in (request_started, request_finished, got_request_exception)))


class Fetcher:
    def __init__(self, app: Flask, base_url: str | None):
        self.app = app
        builder = EnvironBuilder(app, path="/", base_url=base_url)
        try:
            self.environ = builder.get_environ()
        finally:
            builder.close()
        self._context: _Prematched | None = None
        if _nothing_listens_past_the_view(app):
            self._context = _Prematched(app, dict(self.environ), session=app.session_interface.make_null_session(app))

    def _environ(self, url: str) -> tuple[dict, str]:
        """The WSGI environment of a GET of ``url``, and its path as the app matches it."""
        if PLAIN_PATH.fullmatch(url) and not url.startswith("//"):  # what iri_to_uri and unquote leave as it is
            raw_uri = path_info = url
        else:
            raw_uri, path_info = _wsgi_str(url), _wsgi_str(unquote(iri_to_uri(url)))
        return {**self.environ, "PATH_INFO": path_info,
                "REQUEST_URI": raw_uri, "RAW_URI": raw_uri, "wsgi.input": BytesIO()}, path_info

    def render(self, url: str) -> Fetched:
        """GET ``url`` as ``get`` does, by calling its view in the fetcher's own request context."""
        context = self._context
        if context is None or context.url_adapter is None:
            return self.get(url)
        app = self.app
        environ, path_info = self._environ(url)
        request = app.request_class(environ)
        request.json_module = app.json
        try:
            request.url_rule, request.view_args = context.url_adapter.match(path_info, return_rule=True)
        except HTTPException:  # a redirect, a 404: Flask's own handling
            return self.get(url)
        context.request, context.flashes = request, None
        context.push()
        try:
            answer = app.preprocess_request()
            if answer is None:
                answer = app.dispatch_request()
            if type(answer) is not str or context._after_request_functions:  # after_this_request, say
                return _fetched(app.finalize_request(answer), environ)
        except HTTPException:  # abort() in the view: its error page, as Flask makes it
            answer = None
        finally:
            context.pop()
        if answer is None:
            return self.get(url)
        return Fetched(200, HTML, "text/html", answer.encode())

    def get(self, url: str) -> Fetched:
        """GET ``url`` (a path without a query, as Frozen-Flask's generators give it)."""
        environ, _ = self._environ(url)
        context = self.app.request_context(environ)
        error: BaseException | None = None
        try:
            context.push()
            response = self.app.full_dispatch_request()
        except Exception as exc:
            error = exc
            response = self.app.handle_exception(exc)  # raises again: freezing propagates exceptions
        except BaseException as exc:
            error = exc
            raise
        finally:
            if error is not None and self.app.should_ignore_error(error):
                error = None
            context.pop(error)
        return _fetched(response, environ)


def _fetched(response: Response, environ: dict) -> Fetched:
    body = response.get_app_iter(environ)  # what a WSGI server would send
    try:
        return Fetched(response.status_code, response.content_type, response.mimetype, b"".join(body))
    finally:
        if hasattr(body, "close"):
            body.close()
