"""The live companion: login, upload, API and cookie page, in preview only.

The tutorial's dynamic examples (HTTP methods on /login, request.form,
request.files, request.args and request.cookies), done the careful way.
``create_app(..., live=True)`` calls ``init_app``; the app that freezes never
imports this module, so build/ cannot contain these pages. Links to them are
added to HTML responses here, inside ``<!--preview-->`` markers, never in the
frozen templates.
"""

from __future__ import annotations

import functools
import hmac
import os
import re
import secrets
import tempfile
from http import HTTPStatus
from pathlib import Path
from urllib.parse import urlsplit

from flask import (Blueprint, Flask, Request, Response, abort, current_app, flash, g, jsonify,
                   redirect, render_template, request, send_file, session, url_for)
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound, RequestEntityTooLarge

from .accounts import (ACCOUNTS_FILE, SESSIONS_FILE_NAME, FailureThrottle, end_sessions,
                       load_accounts, load_sign_outs, session_epoch, verify_password)
from ..content.loader import current_content as site_content
from ..content.model import plain_fields
from ..errors import ContentError, SiteError
from .uploads import (UploadRefused, check_upload, describe_size, list_uploads, read_upload,
                      store_upload)

# Its templates and assets are the engine's; a site may override a template by its name in templates/.
blueprint = Blueprint("live", __name__, template_folder="templates", static_folder="static",
                      static_url_path="/.live")

PREVIEW_START, PREVIEW_END = b"<!--preview-->", b"<!--/preview-->"
DEFAULT_UPLOAD_LIMIT = 2 * 1024 * 1024
# Room in a request for the multipart framing and the CSRF field around the file.
FORM_OVERHEAD = 64 * 1024
MIN_SECRET_LENGTH = 16
LOGIN_FAILED = "Wrong username or password."
UPLOAD_FIELD = "wordlist-upload"
# Everything under this prefix is the JSON API: key-checked, throttled, JSON for every status.
API_PREFIX = "/api/"
# No page of the preview may be framed by another site (clickjacking).
FRAME_HEADERS = {"X-Frame-Options": "DENY", "Content-Security-Policy": "frame-ancestors 'none'"}
KEPT_ERROR_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")


def init_app(app: Flask) -> None:
    """Configure ``app`` for the live pages and register them.

    Settings given to create_app win; then the environment; then defaults.
    """
    config = app.config
    root = config["SITE_ROOT"]
    config.setdefault("SITE_ACCOUNTS_FILE", root / ACCOUNTS_FILE)
    config.setdefault("SITE_SESSIONS_FILE", Path(config["SITE_ACCOUNTS_FILE"]).with_name(SESSIONS_FILE_NAME))
    config.setdefault("SITE_UPLOAD_FOLDER", root / "uploads")
    config.setdefault("SITE_UPLOAD_LIMIT", _upload_limit_from_env())
    config.setdefault("SITE_UPLOAD_EXTENSIONS", (".txt",))
    config.setdefault("SITE_API_KEY", os.environ.get("SITE_API_KEY") or None)
    config.setdefault("SITE_LOGIN_MAX_FAILURES", 5)
    config.setdefault("SITE_LOGIN_WINDOW", 300)
    config.setdefault("SITE_API_MAX_FAILURES", 10)
    config.setdefault("SITE_API_WINDOW", 60)
    if config["MAX_CONTENT_LENGTH"] is None:
        # Werkzeug refuses a larger Content-Length before reading the body.
        config["MAX_CONTENT_LENGTH"] = config["SITE_UPLOAD_LIMIT"] + FORM_OVERHEAD
    if not config["SECRET_KEY"]:
        config["SECRET_KEY"] = load_secret_key(Path(app.instance_path))
    config["SESSION_COOKIE_HTTPONLY"] = True
    config["SESSION_COOKIE_SAMESITE"] = config["SESSION_COOKIE_SAMESITE"] or "Lax"
    app.request_class = LiveRequest
    app.before_request(refuse_unreadable_form)  # before CSRFProtect, which would call it "token missing"
    CSRFProtect(app)
    app.extensions["login_throttle"] = FailureThrottle(config["SITE_LOGIN_MAX_FAILURES"],
                                                       config["SITE_LOGIN_WINDOW"])
    app.extensions["api_throttle"] = FailureThrottle(config["SITE_API_MAX_FAILURES"],
                                                     config["SITE_API_WINDOW"])
    app.register_blueprint(blueprint)
    _register_api(app)


def _upload_limit_from_env() -> int:
    value = os.environ.get("SITE_UPLOAD_LIMIT", "").strip()
    if not value:
        return DEFAULT_UPLOAD_LIMIT
    match = re.fullmatch(r"([0-9]+)\s*(B|KB|MB)?", value, re.IGNORECASE)
    if not match or int(match[1]) == 0:
        raise SiteError(f"SITE_UPLOAD_LIMIT={value!r}: expected a size such as 2MB, 500KB or 100000")
    scale = {"KB": 1024, "MB": 1024 * 1024}.get((match[2] or "B").upper(), 1)
    return int(match[1]) * scale


def load_secret_key(instance: Path) -> str:
    """SITE_SECRET_KEY, else a random key kept in instance/secret_key (mode 0600).

    The file is created complete or not at all (written aside, then linked
    into place), so two starting processes agree on one key.
    """
    from_env = os.environ.get("SITE_SECRET_KEY", "")
    if from_env:
        if len(from_env) < MIN_SECRET_LENGTH:
            raise SiteError(f"SITE_SECRET_KEY is too short: use at least {MIN_SECRET_LENGTH} "
                            "random characters, or unset it to use a generated key")
        return from_env
    path = instance / "secret_key"
    if not path.exists():
        instance.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=instance, prefix=".secret_key.")
        try:
            with os.fdopen(fd, "w") as file:
                file.write(secrets.token_hex(32))
            os.link(temp, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(temp)
    key = path.read_text().strip()
    if len(key) < MIN_SECRET_LENGTH:
        raise SiteError(f"{path} holds no usable key: delete it and a new one is made")
    return key


# ---------------------------------------------------------------- forms Werkzeug cannot read

class LiveRequest(Request):
    """Keeps why a form body could not be parsed, where Werkzeug reads it as an empty form.

    A part header that is not UTF-8 (a file name in another encoding, say)
    or broken multipart framing made every field vanish, so the visitor was
    told the CSRF token was missing.
    """

    form_problem: str | None = None

    def make_form_data_parser(self):
        parser = super().make_form_data_parser()
        parser.silent = False
        return parser

    def _load_form_data(self) -> None:
        try:
            super()._load_form_data()
        except ValueError as exc:
            self.form_problem = ("a part's header, such as a file name, is not UTF-8 text"
                                 if isinstance(exc, UnicodeDecodeError) else "its multipart framing is broken")
            self.__dict__.update(form=ImmutableMultiDict(), files=ImmutableMultiDict())


def refuse_unreadable_form():
    if request.method not in ("POST", "PUT", "PATCH", "DELETE"):
        return None
    request.form  # noqa: B018 -- parse now, so that a problem is told before the CSRF check
    if request.form_problem:
        return refuse("Form refused", f"The form could not be read: {request.form_problem}.", 400)
    return None


# ---------------------------------------------------------------- helpers

def current_user() -> str | None:
    """The signed-in account, if the session's epoch is still the account's.

    Signing out, a new password and removing the account each change the
    epoch, so they end every earlier session of that account.
    """
    name, epoch = session.get("user"), session.get("epoch")
    if not isinstance(name, str) or not isinstance(epoch, str):
        return None
    current = _session_epoch(name)
    return name if current and hmac.compare_digest(current, epoch) else None


def _session_epoch(name: str) -> str | None:
    """The epoch a session of ``name`` must carry now; None for no such account."""
    try:
        stored = _accounts().get(name)
    except ContentError:
        return None
    if stored is None:
        return None
    if "sign_outs" not in g:
        g.sign_outs = load_sign_outs(Path(current_app.config["SITE_SESSIONS_FILE"]))
    return session_epoch(current_app.config["SECRET_KEY"], name, stored, g.sign_outs.get(name, ""))


def _accounts() -> dict[str, str]:
    """The accounts file as it is now (read once per request), so account changes need no restart."""
    if "accounts" not in g:
        config = current_app.config
        g.accounts = load_accounts(Path(config["SITE_ACCOUNTS_FILE"]), config["SITE_ROOT"])
    return g.accounts


def login_required(view):
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if current_user() is None:
            if request.method != "POST":
                return redirect(url_for("live.login", next=request.script_root + request.path))
            return render_message("Sign in first", "You need to sign in to do that.", 401)
        return view(*args, **kwargs)
    return wrapped


def safe_next(target: str | None) -> str | None:
    """``target`` if it is a path on this site, else None.

    Browsers read ``//host`` and ``/\\host`` as other sites and drop tabs and
    newlines inside URLs, so all of those are refused.
    """
    if not target or not target.startswith("/") or "\\" in target:
        return None
    if target.startswith("//") or any(ord(c) < 32 or ord(c) == 127 for c in target):
        return None
    parts = urlsplit(target)
    return None if parts.scheme or parts.netloc else target


def render_message(title: str, message: str, status: int) -> tuple[str, int]:
    return render_template("message.html", title=title, message=message), status


def render_login(next_url: str | None, *, error: str | None = None, username: str = "",
                 status: int = 200) -> tuple[str, int]:
    page = render_template("login.html", next_url=next_url, error=error, username=username,
                           user=current_user())
    return page, status


def render_upload(*, error: str | None = None, status: int = 200) -> tuple[str, int]:
    config = current_app.config
    page = render_template("upload.html", error=error, user=current_user(),
                           uploads=list_uploads(_upload_folder()),
                           extensions=config["SITE_UPLOAD_EXTENSIONS"],
                           limit=config["SITE_UPLOAD_LIMIT"],
                           limit_text=describe_size(config["SITE_UPLOAD_LIMIT"]))
    return page, status


def _upload_folder() -> Path:
    """The signed-in user's folder; account names are checked slugs, safe as a path part."""
    return Path(current_app.config["SITE_UPLOAD_FOLDER"]) / current_user()


blueprint.add_app_template_filter(describe_size, "size")


# ---------------------------------------------------------------- /login, /logout

@blueprint.route("/login", methods=["GET", "POST"])
def login():
    """GET shows the form, POST checks it; other methods get 405 with Allow from Flask."""
    if request.method != "POST":  # GET, and HEAD which Flask answers as a GET
        return render_login(safe_next(request.args.get("next")))
    next_url = safe_next(request.form.get("next"))
    username = request.form.get("username", "").strip()
    password = request.form.get("password", "")
    if not username or not password:
        return render_login(next_url, username=username, status=400,
                            error="Enter both your username and your password.")
    try:
        accounts = _accounts()
    except ContentError as exc:
        return render_message("Accounts file is broken", str(exc), 500)
    throttle: FailureThrottle = current_app.extensions["login_throttle"]
    client = request.remote_addr or "unknown"
    wait = throttle.acquire(client)  # counted as failed until the password is right
    if wait:
        page, status = render_login(next_url, status=429,
                                    error=f"Too many failed sign-ins. Try again in {wait} seconds.")
        return page, status, {"Retry-After": str(wait)}
    if not verify_password(accounts, username, password):
        page, status = render_login(next_url, username=username, error=LOGIN_FAILED, status=401)
        return page, status, {"WWW-Authenticate": 'Form realm="preview"'}
    throttle.succeeded(client)
    session.clear()
    session["user"], session["epoch"] = username, _session_epoch(username)
    response = redirect(next_url or url_for("live.upload"), 303)
    response.set_cookie("username", username, httponly=True, samesite="Lax")
    return response


@blueprint.post("/logout")
def logout():
    """Ends every session of the signed-in account, not only this browser's."""
    user = current_user()
    if user is not None:
        end_sessions(Path(current_app.config["SITE_SESSIONS_FILE"]), user)
    session.clear()
    response = redirect(request.script_root + "/", 303)  # the site's home page
    response.delete_cookie("username", httponly=True, samesite="Lax")
    return response


# ---------------------------------------------------------------- /upload

@blueprint.route("/upload", methods=["GET", "POST"])
@login_required
def upload():
    if request.method != "POST":
        return render_upload()
    if UPLOAD_FIELD not in request.files:
        return render_upload(status=400, error=f"No file was sent: the form needs a file in the "
                                               f"{UPLOAD_FIELD!r} field.")
    sent = sum(len(files) for _, files in request.files.lists())
    if sent > 1:
        return render_upload(status=400, error=f"One file per upload, please: this form sent {sent} "
                                               f"files, and none was stored.")
    file = request.files[UPLOAD_FIELD]
    config = current_app.config
    try:
        name, data = check_upload(file.filename, file.stream, limit=config["SITE_UPLOAD_LIMIT"],
                                  extensions=config["SITE_UPLOAD_EXTENSIONS"])
    except UploadRefused as refused:
        return render_upload(error=refused.message, status=refused.status)
    stored = store_upload(_upload_folder(), name, data)
    flash(f"Uploaded {stored.shown_name} ({describe_size(stored.size)}).")
    return redirect(url_for("live.upload"), 303)


@blueprint.get("/uploads/<stored_name>")
@login_required
def download(stored_name: str):
    """One of the user's own uploads, as a download that no browser renders."""
    folder = _upload_folder()
    stored = read_upload(folder, stored_name)
    if stored is None:
        abort(404)
    response = send_file(folder / stored.stored_name, mimetype="text/plain", as_attachment=True,
                         download_name=stored.shown_name, max_age=0)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@blueprint.app_errorhandler(RequestEntityTooLarge)
def too_large(error):
    config = current_app.config
    if (request.content_length or 0) > config["MAX_CONTENT_LENGTH"]:
        message = f"The upload is larger than the limit of {describe_size(config['SITE_UPLOAD_LIMIT'])}."
    else:  # Werkzeug's form limits: too many parts, or a text field too large
        message = (f"The form has too many parts (at most {request.max_form_parts}) or a text field "
                   f"over {describe_size(request.max_form_memory_size)}.")
    if request.endpoint == "live.upload" and current_user() and not is_api_request():
        return render_upload(error=message, status=413)
    return refuse("Too large", message, 413)


@blueprint.app_errorhandler(CSRFError)
def csrf_refused(error):
    return refuse("Form refused", "This form has expired or did not come from this site "
                  "(its CSRF token is missing or wrong). Reload the page and try again.", 400)


def refuse(title: str, message: str, status: int) -> Response | tuple[str, int]:
    """A refusal in one sentence: JSON under /api/, else a page."""
    if is_api_request():
        return api_error(status, message)
    return render_message(title, message, status)


# ---------------------------------------------------------------- /api/COLLECTION/

def is_api_request() -> bool:
    return request.path.startswith(API_PREFIX)



def api_error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    response = jsonify(message=message)
    response.status_code = status
    response.headers.update(headers or {})
    return response


@blueprint.before_app_request
def guard_api():
    """Every request under /api/: the key first, then JSON for a route or method that does not exist.

    Runs before routing errors are raised, so an unknown route or a wrong
    method is answered here in JSON, not by the site's HTML 404 page.
    """
    if not is_api_request():
        return None
    refused = check_api_key()
    if refused is not None:
        return refused
    error = request.routing_exception
    if isinstance(error, MethodNotAllowed):
        allowed = ", ".join(sorted(error.valid_methods or ()))
        return api_error(405, f"{request.method} is not allowed on {request.path}; use {allowed}.",
                         {"Allow": allowed})
    if isinstance(error, NotFound):
        return api_error(404, f"No API route {request.path}.")
    return None


def check_api_key() -> Response | None:
    """The tutorial's ``?key=``, or an X-API-Key header, checked in constant time.

    Wrong keys have a throttle of their own, per client address: after too
    many within the window every keyed request waits (429), the right key too.
    """
    expected = current_app.config["SITE_API_KEY"]
    if not expected:
        return api_error(503, "The API is off: no key is configured. Set the SITE_API_KEY "
                              "environment variable and restart the preview.")
    given = request.headers.get("X-API-Key") or request.args.get("key")
    if not given:
        return api_error(401, "An API key is required: send it in the X-API-Key header "
                              "or the key query parameter.", {"WWW-Authenticate": "X-API-Key"})
    throttle: FailureThrottle = current_app.extensions["api_throttle"]
    client = request.remote_addr or "unknown"
    wait = throttle.acquire(client)  # counted as wrong until the comparison says otherwise
    if wait:
        return api_error(429, f"Too many wrong API keys: try again in {wait} seconds.",
                         {"Retry-After": str(wait)})
    if not hmac.compare_digest(given.encode("utf-8", "surrogatepass"),
                               expected.encode("utf-8", "surrogatepass")):
        return api_error(403, "The API key is wrong.")
    throttle.succeeded(client)
    return None


@blueprint.app_errorhandler(HTTPException)
def http_error(error: HTTPException):
    """Under /api/ every refusal is JSON; elsewhere Flask's own page (or a more specific handler)."""
    if not is_api_request():
        return error
    allowed = getattr(error, "valid_methods", None)
    message = " ".join((error.description or f"{error.name}.").split())
    return api_error(error.code or 500, message, {"Allow": ", ".join(allowed)} if allowed else None)


def _as_json_error(response: Response) -> Response:
    """The API's last word: a refusal made as a page by any other handler becomes JSON."""
    if response.status_code < 400 or response.is_json:
        return response
    kept = {name: response.headers[name] for name in KEPT_ERROR_HEADERS if name in response.headers}
    try:
        message = f"{HTTPStatus(response.status_code).phrase}."
    except ValueError:
        message = f"Error {response.status_code}."
    return api_error(response.status_code, message, {**kept, **FRAME_HEADERS})


def _register_api(app: Flask) -> None:
    """``/api/NAME/`` and ``/api/NAME/SLUG`` for each collection the site exposes (``api=True``)."""
    exposed = [name for name, collection in app.extensions["sitegen_site"].collections.items() if collection.api]
    if exposed:
        names = f"any({', '.join(exposed)})"
        app.add_url_rule(f"{API_PREFIX}<{names}:collection>/", "live.api_records", api_records, strict_slashes=False)
        app.add_url_rule(f"{API_PREFIX}<{names}:collection>/<slug>", "live.api_record", api_record)


def api_records(collection: str):
    return jsonify(collection=collection, slugs=sorted(site_content().collections[collection]))


def api_record(collection: str, slug: str):
    record = site_content().collections[collection].get(slug)
    if record is None:
        return api_error(404, f"No record named {slug!r} in {collection}.")
    return jsonify(plain_fields(record))


# ---------------------------------------------------------------- /me

@blueprint.get("/me")
def me():
    """The tutorial's cookie example; the cookie is only shown, never trusted."""
    return render_template("me.html", username=request.cookies.get("username"))


# ---------------------------------------------------------------- preview links

@blueprint.after_app_request
def add_preview_nav(response: Response) -> Response:
    """Put the live pages' links into every HTML page, inside the preview markers.

    Only HTML pages (text/html with a ``</body>``) are touched, so JSON, text,
    downloads and empty answers (OPTIONS, 304) stay byte for byte as the views
    made them; removing the marked block gives back the page as it is frozen.
    Every response says it must not be framed: each page carries the sign-out
    form, and /upload more.
    """
    for name, value in FRAME_HEADERS.items():
        response.headers.setdefault(name, value)
    if is_api_request():
        return _as_json_error(response)
    if response.mimetype != "text/html" or response.direct_passthrough or response.is_streamed:
        return response
    body = response.get_data()
    if b"</body>" not in body.lower():
        return response
    fragment = render_template("_preview_nav.html", user=current_user()).strip().encode()
    response.set_data(insert_before_body_end(body, preview_only(fragment)))
    return response


def preview_only(fragment: bytes) -> bytes:
    """Mark ``fragment`` as a preview-only addition; freeze output never has one."""
    return PREVIEW_START + fragment + PREVIEW_END


def insert_before_body_end(html: bytes, block: bytes) -> bytes:
    """Put ``block`` just before the last ``</body>`` (any case), else at the end."""
    at = html.lower().rfind(b"</body>")
    return html + block if at < 0 else html[:at] + block + html[at:]
