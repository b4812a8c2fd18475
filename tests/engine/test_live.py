"""The live companion in preview: login, API, cookie page, and that build/ never has them."""

from __future__ import annotations

import logging
import re
import threading
import time
from urllib.parse import urlsplit

import pytest

from support import API_KEY, LIVE_PASSWORD, LIVE_USER, csrf_token, parse_html, sign_in
from sitegen.live import accounts
from sitegen.app import create_app
from sitegen.site import load_site
from sitegen.content.loader import load_content
from sitegen.errors import SiteError
from sitegen.live.views import load_secret_key
from sitegen.testing import live_endpoint

PREVIEW_BLOCK = re.compile(rb"<!--preview-->.*?<!--/preview-->", re.DOTALL)


# ---------------------------------------------------------------- preview only

def test_the_freezing_app_has_no_live_pages(example_site, example_content):
    app = create_app(example_site, example_content)
    assert not [rule for rule in app.url_map.iter_rules() if rule.endpoint.startswith("live.")]


def test_build_has_no_page_link_or_form_to_a_live_page(frozen_build, live_app):
    adapter = live_app.url_map.bind("localhost")
    assert live_endpoint(adapter, "/login") == "live.login"  # the check itself can see them
    for file in frozen_build.rglob("*"):
        url = "/" + file.relative_to(frozen_build).as_posix().removesuffix("index.html")
        assert live_endpoint(adapter, url) is None, f"{file} is a live page"
    for html in frozen_build.rglob("*.html"):
        assert b"<!--preview-->" not in html.read_bytes()
        soup = parse_html(html.read_bytes())
        for tag in soup.find_all(["a", "link", "script", "img", "form", "button"]):
            for attribute, method in (("href", "GET"), ("src", "GET"), ("action", "POST"),
                                      ("formaction", "POST")):
                if tag.get(attribute):
                    path = urlsplit(tag[attribute]).path
                    assert live_endpoint(adapter, path, method) is None, f"{html}: {tag}"
    assert not list(frozen_build.rglob("login-style.css")) and not list(frozen_build.rglob("login-script.js"))


def test_preview_links_are_inside_the_markers_and_the_rest_is_the_frozen_page(live_client, client,
                                                                              frozen_build):
    pages = {"/": "index.html", "/users/ada-lovelace/": "users/ada-lovelace/index.html",
             "/nowhere/": "404.html", "/stores/atlantis/": None}
    for path, frozen in pages.items():
        live = live_client.get(path)
        blocks = PREVIEW_BLOCK.findall(live.data)
        assert len(blocks) == 1
        assert PREVIEW_BLOCK.sub(b"", live.data) == client.get(path).data
        if frozen:
            assert PREVIEW_BLOCK.sub(b"", live.data) == (frozen_build / frozen).read_bytes()
        assert int(live.headers["Content-Length"]) == len(live.data)
        links = {a["href"] for a in parse_html(blocks[0]).find_all("a")}
        assert links == {"/me", f"/login?next={path}"}


def test_signed_in_preview_links_offer_upload_and_sign_out(live_client):
    sign_in(live_client)
    nav = parse_html(PREVIEW_BLOCK.search(live_client.get("/").data)[0])
    assert {a["href"] for a in nav.find_all("a")} == {"/me", "/upload"}
    assert nav.form["action"] == "/logout" and nav.form.find("input", {"name": "csrf_token"})


def test_json_and_text_responses_are_never_touched(make_live_app, make_project):
    root = make_project()
    (root / "content/users/ada-lovelace.yaml").write_text(
        "name: Ada\njoined: 2010-12-10\nawards: ['</head></body></html>']\n")
    app = make_live_app(load_content(load_site(root)))
    response = app.test_client().get("/api/users/ada-lovelace", headers={"X-API-Key": API_KEY})
    assert response.mimetype == "application/json"
    assert b"preview" not in response.data
    assert response.get_json()["awards"] == ["</head></body></html>"]
    robots = app.test_client().get("/robots.txt")
    assert robots.mimetype == "text/plain" and b"preview" not in robots.data


# ---------------------------------------------------------------- /login

def test_login_form_has_its_own_style_and_script(live_client):
    soup = parse_html(live_client.get("/login").data)
    form = soup.find("form", {"action": "/login"})
    assert form["method"] == "post"
    assert {i["name"] for i in form.find_all("input", attrs={"name": True})} == {"csrf_token", "username", "password"}
    assets = [tag.get("href") or tag.get("src") for tag in soup.head.select("link[rel=stylesheet], script[src]")]
    assert "/.live/login-style.css" in assets and "/.live/login-script.js" in assets
    for asset in assets:
        assert live_client.get(asset).status_code == 200


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_put_and_delete_are_405_with_allow(live_client, method):
    response = live_client.open("/login", method=method)
    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS", "POST"}


def test_head_and_options_are_answered(live_client):
    head = live_client.head("/login")
    assert head.status_code == 200 and head.data == b""
    options = live_client.options("/login")
    assert options.status_code == 200 and "POST" in options.headers["Allow"]


def test_post_without_csrf_token_is_refused(live_client):
    response = live_client.post("/login", data={"username": LIVE_USER, "password": LIVE_PASSWORD})
    assert response.status_code == 400
    assert "CSRF token" in parse_html(response.data).find(role="alert").get_text()
    assert live_client.get_cookie("username") is None
    assert live_client.get("/upload").status_code == 302


def test_post_with_a_forged_csrf_token_is_refused(live_client):
    csrf_token(live_client)
    response = live_client.post("/login", data={"csrf_token": "forged", "username": LIVE_USER,
                                                "password": LIVE_PASSWORD})
    assert response.status_code == 400


def test_logout_without_csrf_token_is_refused(live_client):
    sign_in(live_client)
    assert live_client.post("/logout").status_code == 400
    assert live_client.get("/upload").status_code == 200


def test_sign_in_gives_a_signed_session_and_a_username_cookie(live_client):
    response = sign_in(live_client)
    assert response.status_code == 303 and response.headers["Location"] == "/upload"
    cookies = {c.split("=", 1)[0]: c for c in response.headers.getlist("Set-Cookie")}
    for name in ("session", "username"):
        assert "HttpOnly" in cookies[name] and "SameSite=Lax" in cookies[name]
    assert live_client.get_cookie("username").value == LIVE_USER
    assert live_client.get("/upload").status_code == 200


def test_unknown_user_and_wrong_password_are_indistinguishable(live_client, caplog):
    caplog.set_level(logging.DEBUG)

    def attempt(username):
        response = sign_in(live_client, username, "hunter2-secret")
        soup = parse_html(response.data)
        soup.find("input", {"name": "csrf_token"})["value"] = ""
        return response.status_code, soup.find(role="alert").get_text(), str(soup.main)

    unknown, wrong = attempt("nobody"), attempt(LIVE_USER)
    assert unknown[0] == wrong[0] == 401
    assert unknown[1] == wrong[1] == "Wrong username or password."
    assert unknown[2].replace("nobody", LIVE_USER) == wrong[2]
    assert "hunter2-secret" not in unknown[2] + wrong[2] + caplog.text


def test_unknown_user_costs_a_hash_check_like_a_known_one(monkeypatch):
    checked = []
    real = accounts.check_password_hash
    monkeypatch.setattr(accounts, "check_password_hash", lambda h, p: checked.append(h) or real(h, p))
    stored = {"ada": accounts.generate_password_hash("pw", "pbkdf2:sha256:1000")}
    assert not accounts.verify_password(stored, "nobody", "pw")
    assert accounts.verify_password(stored, "ada", "pw")
    assert len(checked) == 2 and checked[0].startswith("pbkdf2:sha256:1000$")


def test_simultaneous_wrong_passwords_cannot_race_past_the_limit(make_live_app, monkeypatch):
    from sitegen.live import views

    app = make_live_app()  # 5 failures per 5 minutes
    checked, real = [], views.verify_password

    def slow_check(*args):
        checked.append(args[1])
        time.sleep(0.05)  # widen the window between reading the limit and counting a failure
        return real(*args)

    monkeypatch.setattr(views, "verify_password", slow_check)
    clients = [app.test_client() for _ in range(30)]
    tokens = [csrf_token(client) for client in clients]
    barrier, statuses = threading.Barrier(30), []

    def attempt(client, token):
        barrier.wait()
        response = client.post("/login", data={"csrf_token": token, "username": LIVE_USER,
                                               "password": "wrong"})
        statuses.append(response.status_code)

    threads = [threading.Thread(target=attempt, args=pair) for pair in zip(clients, tokens)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(checked) == 5
    assert sorted(statuses) == [401] * 5 + [429] * 25


def test_repeated_failures_are_throttled_with_429(make_live_app):
    app = make_live_app(SITE_LOGIN_MAX_FAILURES=3, SITE_LOGIN_WINDOW=60)
    now = [1000.0]
    app.extensions["login_throttle"].clock = lambda: now[0]
    client = app.test_client()
    assert [sign_in(client, password="wrong").status_code for _ in range(3)] == [401] * 3
    throttled = sign_in(client)  # even the right password waits
    assert throttled.status_code == 429 and 0 < int(throttled.headers["Retry-After"]) <= 60
    other = app.test_client()
    other.environ_base["REMOTE_ADDR"] = "192.0.2.7"
    assert sign_in(other).status_code == 303
    now[0] += 61
    assert sign_in(client).status_code == 303


@pytest.mark.parametrize("target", [
    "//evil.example/", "/\\evil.example", "\\\\evil.example", "https://evil.example/",
    "javascript:alert(1)", "/\t/evil.example", "/\n/evil.example", "http:/evil.example", "evil",
])
def test_next_outside_the_site_is_ignored(live_client, target):
    response = sign_in(live_client, next=target)
    assert response.status_code == 303 and response.headers["Location"] == "/upload"


def test_next_on_the_site_is_followed(live_client):
    page = live_client.get("/login?next=/users/ada-lovelace/%3Fx")
    assert parse_html(page.data).find("input", {"name": "next"})["value"] == "/users/ada-lovelace/?x"
    response = sign_in(live_client, next="/users/ada-lovelace/")
    assert response.headers["Location"] == "/users/ada-lovelace/"


def test_logout_is_post_only_and_ends_the_session(live_client):
    sign_in(live_client)
    assert live_client.get("/logout").status_code == 405
    response = live_client.post("/logout", data={"csrf_token": csrf_token(live_client, "/upload")})
    assert response.status_code == 303
    assert live_client.get_cookie("username") is None
    assert live_client.get("/upload").status_code == 302


def test_removing_an_account_ends_its_sessions(live_client, live_app):
    sign_in(live_client)
    accounts.save_accounts(live_app.config["SITE_ACCOUNTS_FILE"], {})
    assert live_client.get("/upload").status_code == 302


def session_cookie(client) -> str:
    return client.get_cookie("session").value


def signed_in_with(live_app, cookie: str):
    """A fresh browser holding a saved session cookie: is it signed in?"""
    other = live_app.test_client()
    other.set_cookie("session", cookie)
    return other.get("/upload").status_code == 200


def test_a_cookie_saved_before_signing_out_no_longer_signs_in(live_client, live_app):
    sign_in(live_client)
    saved = session_cookie(live_client)
    assert signed_in_with(live_app, saved)
    live_client.post("/logout", data={"csrf_token": csrf_token(live_client, "/upload")})
    assert not signed_in_with(live_app, saved)
    sign_in(live_client)  # signing in again works, with a new cookie
    assert live_client.get("/upload").status_code == 200 and not signed_in_with(live_app, saved)


def test_signing_out_ends_every_session_of_the_account(live_app):
    laptop, phone = live_app.test_client(), live_app.test_client()
    sign_in(laptop)
    sign_in(phone)
    laptop.post("/logout", data={"csrf_token": csrf_token(laptop, "/upload")})
    assert phone.get("/upload").status_code == 302


def test_a_new_password_ends_earlier_sessions(live_client, live_app):
    sign_in(live_client)
    file = live_app.config["SITE_ACCOUNTS_FILE"]
    accounts.save_accounts(file, {LIVE_USER: accounts.generate_password_hash("new", "pbkdf2:sha256:1000")})
    assert live_client.get("/upload").status_code == 302
    assert sign_in(live_client, password="new").status_code == 303


def test_an_account_removed_and_added_again_does_not_take_old_sessions(live_client, live_app):
    sign_in(live_client)
    file = live_app.config["SITE_ACCOUNTS_FILE"]
    accounts.save_accounts(file, {})
    accounts.save_accounts(file, {LIVE_USER: accounts.generate_password_hash(LIVE_PASSWORD, "pbkdf2:sha256:1000")})
    page = live_client.get("/upload")
    assert page.status_code == 302


def test_a_session_naming_an_account_without_its_epoch_is_refused(live_app):
    client = live_app.test_client()
    with client.session_transaction() as session:  # what a cookie from before epochs held
        session["user"] = LIVE_USER
    assert client.get("/upload").status_code == 302


# ---------------------------------------------------------------- framing

@pytest.mark.parametrize("path", ["/login", "/upload", "/me", "/", "/users/ada-lovelace/"])
def test_no_preview_page_can_be_framed_by_another_site(live_client, path):
    sign_in(live_client)
    response = live_client.get(path)
    assert response.status_code == 200
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Content-Security-Policy"] == "frame-ancestors 'none'"


def test_a_broken_accounts_file_is_named_with_its_line(live_client, live_app):
    live_app.config["SITE_ACCOUNTS_FILE"].write_text("# accounts\nada: plaintext\n")
    response = sign_in(live_client)
    assert response.status_code == 500
    message = parse_html(response.data).find(role="alert").get_text()
    assert message.startswith(f"{live_app.config['SITE_ACCOUNTS_FILE']}:2:6: account 'ada' needs a password hash")


# ---------------------------------------------------------------- /api/users/

def test_api_returns_a_user_as_json(live_client):
    for request in ({"query_string": {"key": API_KEY}}, {"headers": {"X-API-Key": API_KEY}}):
        response = live_client.get("/api/users/ada-lovelace", **request)
        assert response.status_code == 200
        assert response.get_json() == {"slug": "ada-lovelace", "name": "Ada Lovelace",
                                       "joined": "2010-12-10",
                                       "awards": ["First Published Algorithm", "Poetical Science Medal"],
                                       "bio": "Writes notes longer than the papers they annotate."}


def test_api_lists_the_slugs_of_an_exposed_collection(live_client, example_content):
    response = live_client.get("/api/users/", headers={"X-API-Key": API_KEY})
    assert response.get_json() == {"collection": "users", "slugs": sorted(example_content.users)}


def test_api_serves_only_the_collections_a_site_exposes(live_client):
    response = live_client.get("/api/stores/", headers={"X-API-Key": API_KEY})
    assert response.status_code == 404
    assert response.get_json() == {"message": "No API route /api/stores/."}


@pytest.mark.parametrize("request_args, status", [
    ({}, 401),
    ({"query_string": {"key": "wrong"}}, 403),
    ({"query_string": {"key": "ключ"}}, 403),
    ({"headers": {"X-API-Key": "clé-wrong"}}, 403),
    ({"query_string": {"key": API_KEY + "é"}}, 403),
])
def test_api_refuses_a_missing_or_wrong_key_in_json(live_client, request_args, status):
    response = live_client.get("/api/users/ada-lovelace", **request_args)
    assert response.status_code == status
    assert response.mimetype == "application/json" and response.get_json()["message"]


def test_api_unknown_user_is_a_json_404(live_client):
    response = live_client.get("/api/users/nobody", headers={"X-API-Key": API_KEY})
    assert response.status_code == 404
    assert response.get_json() == {"message": "No record named 'nobody' in users."}


@pytest.mark.parametrize("method, path, status", [
    ("GET", "/api/nothing-here", 404),
    ("GET", "/api/users/ada-lovelace/extra", 404),
    ("POST", "/api/users/", 405),
    ("PUT", "/api/users/ada-lovelace", 405),
    ("DELETE", "/api/users/ada-lovelace", 405),
    ("PATCH", "/api/users/", 405),
])
def test_api_answers_json_for_unknown_routes_and_methods(live_client, method, path, status):
    response = live_client.open(path, method=method, headers={"X-API-Key": API_KEY})
    assert response.status_code == status
    assert response.mimetype == "application/json"
    assert response.get_json()["message"] and b"<" not in response.data
    if status == 405:
        assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}


def test_errors_raised_by_api_views_are_json_too(make_live_app):
    from flask import abort

    app = make_live_app()
    app.add_url_rule("/api/gone/", "gone", lambda: abort(404))  # the site has an HTML 404 handler
    app.add_url_rule("/api/teapot/", "teapot", lambda: abort(418))
    client = app.test_client()
    gone = client.get("/api/gone/", headers={"X-API-Key": API_KEY})
    assert gone.status_code == 404 and gone.get_json() == {"message": "Not Found."}
    teapot = client.get("/api/teapot/", headers={"X-API-Key": API_KEY})
    assert teapot.status_code == 418 and "teapot" in teapot.get_json()["message"]


def test_wrong_api_keys_have_a_throttle_of_their_own(make_live_app):
    app = make_live_app(SITE_API_MAX_FAILURES=3, SITE_API_WINDOW=60)
    now = [1000.0]
    app.extensions["api_throttle"].clock = lambda: now[0]
    client = app.test_client()
    wrong = [client.get("/api/users/", headers={"X-API-Key": f"guess-{n}"}) for n in range(3)]
    assert [r.status_code for r in wrong] == [403] * 3
    throttled = client.get("/api/users/", headers={"X-API-Key": API_KEY})  # the right key waits too
    assert throttled.status_code == 429 and 0 < int(throttled.headers["Retry-After"]) <= 60
    assert "Too many wrong API keys" in throttled.get_json()["message"]
    other = app.test_client()
    other.environ_base["REMOTE_ADDR"] = "192.0.2.7"
    assert other.get("/api/users/", headers={"X-API-Key": API_KEY}).status_code == 200
    assert sign_in(client).status_code == 303  # sign-in keeps its own count
    now[0] += 61
    assert client.get("/api/users/", headers={"X-API-Key": API_KEY}).status_code == 200


def test_api_without_a_configured_key_says_so(make_live_app):
    response = make_live_app(SITE_API_KEY=None).test_client().get("/api/users/", query_string={"key": "x"})
    assert response.status_code == 503
    assert "SITE_API_KEY" in response.get_json()["message"]


# ---------------------------------------------------------------- /me

def test_me_without_a_cookie(live_client):
    assert parse_html(live_client.get("/me").data).find(class_="live-cookie").get_text() == \
        "No username cookie was found"


def test_me_escapes_the_cookie(live_client):
    live_client.set_cookie("username", "<script>alert(1)</script>")
    response = live_client.get("/me")
    soup = parse_html(response.data)
    assert soup.find(class_="live-cookie").get_text() == "Your stored username is <script>alert(1)</script>"
    assert b"<script>alert" not in response.data


# ---------------------------------------------------------------- secrets

def test_secret_key_is_generated_once_into_the_instance_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("SITE_SECRET_KEY", raising=False)
    instance = tmp_path / "instance"
    key = load_secret_key(instance)
    assert len(key) >= 32 and load_secret_key(instance) == key
    assert (instance / "secret_key").stat().st_mode & 0o777 == 0o600
    assert [p.name for p in instance.iterdir()] == ["secret_key"]


def test_secret_key_from_the_environment_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("SITE_SECRET_KEY", "s" * 40)
    assert load_secret_key(tmp_path / "instance") == "s" * 40
    assert not (tmp_path / "instance").exists()
    monkeypatch.setenv("SITE_SECRET_KEY", "short")
    with pytest.raises(SiteError, match="SITE_SECRET_KEY is too short"):
        load_secret_key(tmp_path / "instance")


def test_live_app_without_a_key_uses_the_projects_instance_folder(make_project, example_content, monkeypatch):
    monkeypatch.delenv("SITE_SECRET_KEY", raising=False)
    root = make_project()
    app = create_app(load_site(root), example_content, live=True)
    assert app.config["SECRET_KEY"] == (root / "instance" / "secret_key").read_text()
    assert app.config["SESSION_COOKIE_HTTPONLY"] and app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
