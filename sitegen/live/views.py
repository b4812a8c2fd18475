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
from pathlib import Path
from urllib.parse import urlsplit

from flask import (Blueprint, Flask, Response, abort, current_app, flash, g, jsonify, redirect,
                   render_template, request, send_file, session, url_for)
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import RequestEntityTooLarge

from .accounts import ACCOUNTS_FILE, LoginThrottle, load_accounts, verify_password
from ..content.loader import current_content as site_content
from ..content.model import plain_fields
from ..errors import ContentError, SiteError
from .uploads import (UploadRefused, check_upload, describe_size, list_uploads, read_upload,
                      store_upload)

blueprint = Blueprint("live", __name__)

PREVIEW_START, PREVIEW_END = b"<!--preview-->", b"<!--/preview-->"
DEFAULT_UPLOAD_LIMIT = 2 * 1024 * 1024
# Room in a request for the multipart framing and the CSRF field around the file.
FORM_OVERHEAD = 64 * 1024
MIN_SECRET_LENGTH = 16
LOGIN_FAILED = "Wrong username or password."
UPLOAD_FIELD = "wordlist-upload"


def init_app(app: Flask) -> None:
    """Configure ``app`` for the live pages and register them.

    Settings given to create_app win; then the environment; then defaults.
    """
    config = app.config
    root = config["SITE_ROOT"]
    config.setdefault("SITE_ACCOUNTS_FILE", root / ACCOUNTS_FILE)
    config.setdefault("SITE_UPLOAD_FOLDER", root / "uploads")
    config.setdefault("SITE_UPLOAD_LIMIT", _upload_limit_from_env())
    config.setdefault("SITE_UPLOAD_EXTENSIONS", (".txt",))
    config.setdefault("SITE_API_KEY", os.environ.get("SITE_API_KEY") or None)
    config.setdefault("SITE_LOGIN_MAX_FAILURES", 5)
    config.setdefault("SITE_LOGIN_WINDOW", 300)
    if config["MAX_CONTENT_LENGTH"] is None:
        # Werkzeug refuses a larger Content-Length before reading the body.
        config["MAX_CONTENT_LENGTH"] = config["SITE_UPLOAD_LIMIT"] + FORM_OVERHEAD
    if not config["SECRET_KEY"]:
        config["SECRET_KEY"] = load_secret_key(Path(app.instance_path))
    config["SESSION_COOKIE_HTTPONLY"] = True
    config["SESSION_COOKIE_SAMESITE"] = config["SESSION_COOKIE_SAMESITE"] or "Lax"
    CSRFProtect(app)
    app.extensions["login_throttle"] = LoginThrottle(config["SITE_LOGIN_MAX_FAILURES"],
                                                     config["SITE_LOGIN_WINDOW"])
    app.register_blueprint(blueprint)


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


# ---------------------------------------------------------------- helpers

def current_user() -> str | None:
    """The signed-in account; removing an account ends its sessions."""
    name = session.get("user")
    if name is None:
        return None
    try:
        accounts = _accounts()
    except ContentError:
        return None
    return name if name in accounts else None


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
    throttle: LoginThrottle = current_app.extensions["login_throttle"]
    client = request.remote_addr or "unknown"
    wait = throttle.retry_after(client)
    if wait:
        page, status = render_login(next_url, status=429,
                                    error=f"Too many failed sign-ins. Try again in {wait} seconds.")
        return page, status, {"Retry-After": str(wait)}
    username = request.form.get("username", "").strip()
    password = request.form.get("password", "")
    if not username or not password:
        return render_login(next_url, username=username, status=400,
                            error="Enter both your username and your password.")
    try:
        accounts = _accounts()
    except ContentError as exc:
        return render_message("Accounts file is broken", str(exc), 500)
    if not verify_password(accounts, username, password):
        throttle.failed(client)
        page, status = render_login(next_url, username=username, error=LOGIN_FAILED, status=401)
        return page, status, {"WWW-Authenticate": 'Form realm="preview"'}
    throttle.succeeded(client)
    session.clear()
    session["user"] = username
    response = redirect(next_url or url_for("live.upload"), 303)
    response.set_cookie("username", username, httponly=True, samesite="Lax")
    return response


@blueprint.post("/logout")
def logout():
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
    message = (f"The upload is larger than the limit of "
               f"{describe_size(current_app.config['SITE_UPLOAD_LIMIT'])}.")
    if request.endpoint == "live.upload" and current_user():
        return render_upload(error=message, status=413)
    return render_message("Too large", message, 413)


@blueprint.app_errorhandler(CSRFError)
def csrf_refused(error):
    return render_message("Form refused", "This form has expired or did not come from this site "
                          "(its CSRF token is missing or wrong). Reload the page and try again.", 400)


# ---------------------------------------------------------------- /api/COLLECTION/

def api_error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    response = jsonify(message=message)
    response.status_code = status
    response.headers.update(headers or {})
    return response


def api_key_required(view):
    """The tutorial's ``?key=``, or an X-API-Key header, checked in constant time."""
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        expected = current_app.config["SITE_API_KEY"]
        if not expected:
            return api_error(503, "The API is off: no key is configured. Set the SITE_API_KEY "
                                  "environment variable and restart the preview.")
        given = request.headers.get("X-API-Key") or request.args.get("key")
        if not given:
            return api_error(401, "An API key is required: send it in the X-API-Key header "
                                  "or the key query parameter.", {"WWW-Authenticate": "X-API-Key"})
        if not hmac.compare_digest(given.encode("utf-8", "surrogatepass"),
                                   expected.encode("utf-8", "surrogatepass")):
            return api_error(403, "The API key is wrong.")
        return view(*args, **kwargs)
    return wrapped


def _exposed_records(collection: str):
    """The records of a collection the site serves through the API (``api=True``), or None."""
    declared = current_app.extensions["sitegen_site"].collections.get(collection)
    return site_content().collections[collection] if declared and declared.api else None


@blueprint.get("/api/<collection>/")
@api_key_required
def api_records(collection: str):
    records = _exposed_records(collection)
    if records is None:
        return api_error(404, f"No collection named {collection!r} is served by the API.")
    return jsonify(collection=collection, slugs=sorted(records))


@blueprint.get("/api/<collection>/<slug>")
@api_key_required
def api_record(collection: str, slug: str):
    records = _exposed_records(collection)
    if records is None:
        return api_error(404, f"No collection named {collection!r} is served by the API.")
    record = records.get(slug)
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
    """
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
