"""A lighter test client for freezing, plugged in through Flask's ``app.test_client_class``.

Frozen-Flask 1.0.2 fetches every page with ``client.get(url,
follow_redirects=..., base_url=...)`` on a fresh test client. The stock
client builds a full request environment each time (a third of the cost of a
page); this one builds it once per base URL, changes only the path, and calls
the app directly. Anything else (redirects, other arguments) goes to the
stock client. tests/test_freeze_fidelity.py checks that both freeze
byte-identical sites; Frozen-Flask is pinned in pyproject.toml because this
relies on how it calls the client.
"""

from __future__ import annotations

from io import BytesIO
from typing import Any
from urllib.parse import unquote

from flask.testing import EnvironBuilder, FlaskClient
from werkzeug.test import TestResponse
from werkzeug.urls import iri_to_uri


def _wsgi_str(text: str) -> str:
    """A str as WSGI carries it: UTF-8 bytes read as Latin-1 (PEP 3333)."""
    return text.encode().decode("latin-1")


class FreezeClient(FlaskClient):
    def __init__(self, application: Any, response_wrapper: Any = None, *args: Any, **kwargs: Any):
        # Werkzeug makes a new response class for every client it is given Flask's
        # response class; Frozen-Flask makes a client per page. Make it once per app.
        wrappers = application.extensions.setdefault("freeze_client_wrappers", {})
        if response_wrapper is not None and not issubclass(response_wrapper, TestResponse):
            if response_wrapper not in wrappers:
                wrappers[response_wrapper] = type("WrapperTestResponse", (TestResponse, response_wrapper), {})
            response_wrapper = wrappers[response_wrapper]
        super().__init__(application, response_wrapper, *args, **kwargs)

    def get(self, url: str, follow_redirects: bool = False, base_url: str | None = None,
            **kwargs: Any) -> Any:
        if kwargs or "?" in url:
            return super().get(url, follow_redirects=follow_redirects, base_url=base_url, **kwargs)
        environ = self._base_environ(base_url).copy()
        raw_uri = _wsgi_str(url)
        environ.update(PATH_INFO=_wsgi_str(unquote(iri_to_uri(url))), REQUEST_URI=raw_uri,
                       RAW_URI=raw_uri, **{"wsgi.input": BytesIO()})
        started: list[Any] = []

        def start_response(status: str, headers: list, exc_info: Any = None) -> None:
            started[:] = [status, headers]

        body_iter = self.application(environ, start_response)
        try:
            body = b"".join(body_iter)
        finally:
            if hasattr(body_iter, "close"):
                body_iter.close()
        status, headers = started
        if 300 <= int(status[:3]) < 400:
            return super().get(url, follow_redirects=follow_redirects, base_url=base_url)
        return self.application.response_class(body, status=status, headers=headers)

    def _base_environ(self, base_url: str | None) -> dict[str, Any]:
        environs = self.application.extensions.setdefault("freeze_client_environs", {})
        if base_url not in environs:
            builder = EnvironBuilder(self.application, path="/", base_url=base_url,
                                     environ_base=self.environ_base)
            try:
                environs[base_url] = builder.get_environ()
            finally:
                builder.close()
        return environs[base_url]
