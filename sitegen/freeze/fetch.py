"""Ask the app for a page as Frozen-Flask's test client would, without the client.

Frozen-Flask 1.0.2 makes a test client for every page, and the client builds
a whole request environment, runs the app through WSGI and wraps the answer
in a new response: together as much work as rendering a simple page. A
fetcher builds the environment once per base URL, changes only the path, and
runs the request the way ``Flask.wsgi_app`` does, keeping the app's own
response. tests/test_freeze_fidelity.py checks it answers like the client.
"""

from __future__ import annotations

import re
from io import BytesIO
from typing import NamedTuple
from urllib.parse import unquote

from flask import Flask
from flask.testing import EnvironBuilder
from werkzeug.urls import iri_to_uri


PLAIN_PATH = re.compile(r"(?!//)[A-Za-z0-9/._~-]*")


class Fetched(NamedTuple):
    status_code: int
    content_type: str | None
    mimetype: str | None
    data: bytes


def _wsgi_str(text: str) -> str:
    """A str as WSGI carries it: UTF-8 bytes read as Latin-1 (PEP 3333)."""
    return text.encode().decode("latin-1")


class Fetcher:
    def __init__(self, app: Flask, base_url: str | None):
        self.app = app
        builder = EnvironBuilder(app, path="/", base_url=base_url)
        try:
            self.environ = builder.get_environ()
        finally:
            builder.close()

    def get(self, url: str) -> Fetched:
        """GET ``url`` (a path without a query, as Frozen-Flask's generators give it)."""
        if PLAIN_PATH.fullmatch(url):  # what iri_to_uri and unquote would leave as it is
            raw_uri = path_info = url
        else:
            raw_uri, path_info = _wsgi_str(url), _wsgi_str(unquote(iri_to_uri(url)))
        environ = {**self.environ, "PATH_INFO": path_info,
                   "REQUEST_URI": raw_uri, "RAW_URI": raw_uri, "wsgi.input": BytesIO()}
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
        body = response.get_app_iter(environ)  # what a WSGI server would send
        try:
            return Fetched(response.status_code, response.content_type, response.mimetype, b"".join(body))
        finally:
            if hasattr(body, "close"):
                body.close()

