"""The preview server: what it adds to pages, what it leaves alone, and how it reacts to edits."""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
from bs4 import Comment
from flask import Flask, jsonify
from tornado.ioloop import IOLoop
from werkzeug.test import Client

from support import (API_KEY, EXAMPLE, LIVE_USER, PREVIEW_ENV, REPO, PreviewProcess, Visitor,
                     make_preview_project, multipart, parse_html)
from sitegen.preview.server import PreviewServer, PreviewSite, PreviewMiddleware

PREVIEW_BLOCK = re.compile(rb"<!--preview-->.*?<!--/preview-->", re.DOTALL)


def without_preview(body: bytes) -> bytes:
    return PREVIEW_BLOCK.sub(b"", body)


@pytest.fixture
def site():
    return PreviewSite(EXAMPLE)


@pytest.fixture
def preview(site):
    return Client(PreviewMiddleware(site))


@pytest.fixture
def project_site(make_project):
    return PreviewSite(make_project())


@pytest.fixture
def project_preview(project_site):
    return Client(PreviewMiddleware(project_site))


def error_shown(preview, url: str) -> str:
    """The error the preview shows at ``url``: a 500 page with the reload client, no traceback."""
    response = preview.get(url)
    assert response.status_code == 500
    assert "Traceback" not in response.text and preview_scripts(response.data)
    return parse_html(response.data).select_one(".preview-errors").get_text()


def edit(path: Path, old: str, new: str) -> Path:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return path


def preview_scripts(body: bytes) -> list:
    """The reload clients that sit between the preview markers."""
    soup = parse_html(body)
    scripts = []
    for start in soup.find_all(string=lambda s: isinstance(s, Comment) and s == "preview"):
        for sibling in start.next_siblings:
            if isinstance(sibling, Comment) and sibling == "/preview":
                break
            if sibling.name == "script" and sibling.has_attr("data-epoch"):
                scripts.append(sibling)
    return scripts


# ---------------------------------------------------------------- injection

def test_html_pages_get_the_reload_client_between_markers(preview, site):
    response = preview.get("/users/ada-lovelace/")
    [script] = preview_scripts(response.data)
    assert script["data-epoch"] == site.epoch
    assert "/.livereload" in script.string
    body = parse_html(response.data).body
    assert body.contents[-1] == Comment("/preview")  # the block closes the body


def test_content_length_counts_the_injected_client(preview):
    response = preview.get("/")
    assert int(response.headers["Content-Length"]) == len(response.data)


def test_head_has_the_length_of_the_injected_page_and_no_body(preview):
    head, get = preview.head("/about/"), preview.get("/about/")
    assert head.status_code == 200 and head.data == b""
    assert int(head.headers["Content-Length"]) == len(get.data)


def test_options_is_answered_without_a_body(preview):
    response = preview.options("/users/")
    assert response.status_code == 200
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "HEAD", "OPTIONS"}
    assert response.data == b"" and response.headers["Content-Length"] == "0"


def test_stylesheets_and_xml_pass_untouched(preview):
    css = preview.get("/static/styles/site.css")
    assert css.data == (EXAMPLE / "static/styles/site.css").read_bytes()
    head = preview.head("/static/styles/site.css")
    assert head.data == b"" and head.headers["Content-Length"] == str(len(css.data))
    sitemap = preview.get("/sitemap.xml")
    assert b"preview" not in sitemap.data
    assert int(sitemap.headers["Content-Length"]) == len(sitemap.data)


def test_json_is_never_touched_even_when_it_looks_like_html(site):
    app = Flask("json_only")
    payload = {"html": "<html><head></head><body></body></html>"}
    app.add_url_rule("/api", view_func=lambda: jsonify(payload))
    site.app = app
    response = Client(PreviewMiddleware(site)).get("/api")
    assert response.json == payload
    assert int(response.headers["Content-Length"]) == len(response.data)


def test_live_api_json_passes_the_preview_byte_for_byte(monkeypatch):
    monkeypatch.setenv("SITE_API_KEY", "preview-api-key")
    site = PreviewSite(EXAMPLE)
    direct = site.app.test_client().get("/api/users/guido-van-rossum?key=preview-api-key")
    response = Client(PreviewMiddleware(site)).get("/api/users/guido-van-rossum?key=preview-api-key")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.data == direct.data
    assert response.json["name"] == "Guido van Rossum"
    assert int(response.headers["Content-Length"]) == len(response.data)


def test_missing_pages_carry_the_client_too(preview):
    response = preview.get("/users/nobody/")
    assert response.status_code == 404
    assert preview_scripts(response.data)


# ---------------------------------------------------------------- parity with freeze

def test_every_frozen_file_matches_the_preview_apart_from_the_client(frozen_build, preview):
    files = [path for path in sorted(frozen_build.rglob("*")) if path.is_file()
             and path.name != ".sitegen-build"]
    assert len(files) > 20
    for path in files:
        relative = path.relative_to(frozen_build).as_posix()
        url = "/" + (relative[: -len("index.html")] if relative.endswith("index.html") else relative)
        response = preview.get(url)
        assert response.status_code == 200, url
        assert without_preview(response.data) == path.read_bytes(), url


# ---------------------------------------------------------------- edits and errors

def test_content_edit_rereads_only_that_file(project_site, project_preview, monkeypatch):
    import sitegen.content.loader

    root = project_site.root
    loaded = []
    original = sitegen.content.loader.load_record
    monkeypatch.setattr(sitegen.content.loader, "load_record",
                        lambda schema, path, *args: loaded.append(path) or original(schema, path, *args))
    changed = edit(root / "content/users/ada-lovelace.yaml", "name: Ada Lovelace", "name: Ada King")
    assert project_site.apply({changed}) is None
    assert loaded == [changed]
    page = project_preview.get("/users/ada-lovelace/")
    assert parse_html(page.data).h1.get_text() == "Ada King"


def test_a_deleted_record_that_others_refer_to_shows_their_files_until_it_is_back(make_project):
    root = make_project("events")
    events_site = PreviewSite(root)
    preview = Client(PreviewMiddleware(events_site))
    venue = root / "content/venues/small-room.yaml"
    kept = venue.read_text()
    venue.unlink()
    events_site.apply({venue})
    assert "content/events/talk-4.yaml:3:8: no venue 'small-room' in content/venues/" in error_shown(preview, "/")
    venue.write_text(kept)
    events_site.apply({venue})
    assert preview.get("/events/talk-4/").status_code == 200


def test_new_and_deleted_records_come_and_go(project_site, project_preview):
    new = project_site.root / "content/users/zoe-zed.yaml"
    new.write_text("name: Zoe Zed\njoined: 2020-01-01\n")
    project_site.apply({new})
    assert project_preview.get("/users/zoe-zed/").status_code == 200
    new.unlink()
    project_site.apply({new})
    assert project_preview.get("/users/zoe-zed/").status_code == 404


def test_broken_content_shows_an_error_page_on_every_page_until_fixed(
        project_site, project_preview, capsys):
    broken = edit(project_site.root / "content/users/ada-lovelace.yaml", "joined: ", "joined: [")
    project_site.apply({broken})
    for url in ("/", "/stores/berlin/", "/users/ada-lovelace/"):
        error = error_shown(project_preview, url)
        assert re.match(r"content/users/ada-lovelace\.yaml:\d+:\d+: invalid YAML", error)
    assert capsys.readouterr().err.count("ada-lovelace.yaml") == 1  # reported once, not per request
    edit(broken, "joined: [", "joined: ")
    project_site.apply({broken})
    assert project_preview.get("/users/ada-lovelace/").status_code == 200
    assert "fixed" in capsys.readouterr().err


def test_template_syntax_error_shows_on_every_page(project_site, project_preview):
    broken = edit(project_site.root / "templates/store.html", "{% endblock %}", "{% endblok %}")
    project_site.apply({broken})
    assert error_shown(project_preview, "/about/").startswith("templates/store.html:")


def test_template_error_while_rendering_names_file_and_line(project_site, project_preview):
    broken = edit(project_site.root / "templates/profile.html",
                  "{{ user.name }}</h1>", "{{ nickname }}</h1>")
    project_site.apply({broken})
    error = error_shown(project_preview, "/users/ada-lovelace/")
    assert re.match(r"templates/profile\.html:\d+: 'nickname' is undefined", error)
    stylesheet = project_site.root / "static/styles/site.css"
    stylesheet.write_text(stylesheet.read_text() + "\nh1 { color: red }\n")
    project_site.apply({stylesheet})  # fixes nothing: the error stays on every page
    assert error_shown(project_preview, "/about/") == error
    edit(broken, "{{ nickname }}</h1>", "{{ user.name }}</h1>")
    project_site.apply({broken})
    assert project_preview.get("/users/ada-lovelace/").status_code == 200


def test_site_broken_at_start_heals_when_fixed(make_project):
    root = make_project()
    site_file = edit(root / "content/site.yaml", "title: Wordsmiths", "title: [")
    site = PreviewSite(root)
    preview = Client(PreviewMiddleware(site))
    assert preview.get("/").status_code == 500
    edit(site_file, "title: [", "title: Wordsmiths")
    site.apply({site_file})
    assert preview.get("/").status_code == 200


def test_stylesheet_edit_is_announced_by_url_path_only(project_site):
    css = project_site.root / "static/styles/site.css"
    before = project_site.epoch
    css.write_text(css.read_text() + "\nbody { color: red }\n")
    assert project_site.apply({css}) == ["/static/styles/site.css"]
    assert project_site.epoch != before


# ---------------------------------------------------------------- the tornado server

@pytest.fixture
def running(project_site):
    """The preview server in this process, on a free port, with a slow page added."""
    project_site.app.add_url_rule("/slow/", view_func=lambda: time.sleep(1.5) or "slow")
    project_site.app.config["MAX_CONTENT_LENGTH"] = 1000
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    started, loops = threading.Event(), []

    def serve():
        asyncio.set_event_loop(asyncio.new_event_loop())
        PreviewServer(project_site).listen([listener])
        loops.append(IOLoop.current())
        started.set()
        loops[0].start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    started.wait(5)
    yield listener.getsockname()[1]
    loops[0].add_callback(loops[0].stop)
    thread.join(5)


def request(port: int, method: str, path: str, headers: dict | None = None, body: bytes | None = None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    response.body = response.read()
    connection.close()
    return response


def test_a_slow_request_does_not_stall_others(running):
    slow = threading.Thread(target=request, args=(running, "GET", "/slow/"))
    slow.start()
    time.sleep(0.2)
    started = time.perf_counter()
    assert request(running, "GET", "/about/").status == 200
    assert time.perf_counter() - started < 0.5
    slow.join()


def test_oversized_bodies_are_refused_before_they_are_read(running):
    connection = socket.create_connection(("127.0.0.1", running), timeout=5)
    connection.sendall(b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 500000000\r\n\r\n")
    assert connection.recv(100).startswith(b"HTTP/1.1 413")  # without waiting for the body
    connection.close()


def websocket_handshake(port: int, origin: str, host: str | None = None) -> int:
    headers = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Origin": origin,
               **({"Host": host} if host else {})}
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.request("GET", "/.livereload", headers=headers)
    status = connection.getresponse().status
    connection.close()
    return status


def test_reload_channel_accepts_pages_of_this_server_only(running):
    assert websocket_handshake(running, f"http://127.0.0.1:{running}") == 101
    assert websocket_handshake(running, "http://evil.example") == 403


# ---------------------------------------------------------------- a running preview: hosts

FOREIGN = "evil.example"


@pytest.mark.parametrize("path", ["/", "/login", "/users/ada-lovelace/", "/api/users/"])
def test_a_host_the_preview_was_not_started_for_is_refused(running_preview, path):
    response = Visitor(running_preview.port).request(
        "GET", path, headers={"Host": f"{FOREIGN}:{running_preview.port}", "X-API-Key": API_KEY})
    assert response.status == 400
    if path.startswith("/api/"):
        assert json.loads(response.body) == {"message": (
            f"Unknown host '{FOREIGN}:{running_preview.port}': this preview answers only "
            "localhost, 127.0.0.1, [::1].")}
    else:
        assert parse_html(response.body).find(role="alert").get_text().startswith(f"Unknown host '{FOREIGN}")
        assert not parse_html(response.body).find("input", {"name": "csrf_token"})


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::1]", "LOCALHOST"])
def test_loopback_names_are_answered_with_or_without_the_port(running_preview, host):
    visitor = Visitor(running_preview.port)
    for sent in (host, f"{host}:{running_preview.port}"):
        assert visitor.request("GET", "/about/", headers={"Host": sent}).status == 200


def test_the_reload_channel_refuses_a_foreign_host_even_with_its_own_origin(running_preview):
    port = running_preview.port
    assert websocket_handshake(port, f"http://127.0.0.1:{port}") == 101
    assert websocket_handshake(port, f"http://{FOREIGN}:{port}", host=f"{FOREIGN}:{port}") == 400


def test_the_preview_allows_what_host_names():
    from sitegen.preview.server import allowed_hosts

    assert allowed_hosts("127.0.0.1") == ("localhost", "127.0.0.1", "[::1]")
    assert allowed_hosts("::1") == ("localhost", "127.0.0.1", "[::1]")
    assert allowed_hosts("preview.lan") == ("localhost", "127.0.0.1", "[::1]", "preview.lan")


def test_wrong_api_keys_are_throttled_in_the_running_preview(running_preview):
    prober = Visitor(running_preview.port, source="127.0.0.2")  # its own count, not 127.0.0.1's
    statuses = [prober.request("GET", "/api/users/", headers={"X-API-Key": f"guess-{n}"}).status
                for n in range(12)]
    assert statuses == [403] * 10 + [429] * 2
    throttled = prober.request("GET", "/api/users/", headers={"X-API-Key": API_KEY})
    assert throttled.status == 429 and int(throttled.getheader("Retry-After")) > 0
    assert Visitor(running_preview.port).get("/api/users/", **{"X-API-Key": API_KEY}).status == 200


# ---------------------------------------------------------------- a running preview: refusals say why

def test_a_declared_body_over_the_limit_is_413_with_a_reason(running_preview):
    for path, expected in (("/upload", b"<p role=\"alert\">The upload is larger than the limit of 100 KB.</p>"),
                           ("/api/users/", b'{"message": "The upload is larger than the limit of 100 KB."}')):
        connection = socket.create_connection(("127.0.0.1", running_preview.port), timeout=5)
        connection.sendall(f"POST {path} HTTP/1.1\r\nHost: localhost\r\n"
                           "Content-Length: 500000000\r\n\r\n".encode())
        answer = b""
        while expected not in answer and (chunk := connection.recv(65536)):
            answer += chunk  # until the answer is whole, or the server closes
        assert answer.startswith(b"HTTP/1.1 413") and expected in answer
        connection.close()


def test_a_client_sending_a_large_body_reads_the_413_not_a_reset(running_preview):
    visitor = Visitor(running_preview.port)
    visitor.sign_in()
    content_type, body = multipart([("csrf_token", visitor.csrf_token("/upload")),
                                    ("wordlist-upload", (b"big.txt", b"a" * 3_000_000))])
    response = visitor.request("POST", "/upload", body, {"Content-Type": content_type})
    assert response.status == 413
    assert parse_html(response.body).find(role="alert").get_text() == \
        "The upload is larger than the limit of 100 KB."


def test_a_chunked_body_over_the_limit_is_413(running_preview):
    chunks = (b"a" * 65536 for _ in range(40))
    response = Visitor(running_preview.port).request(
        "POST", "/api/users/", chunks, {"Transfer-Encoding": "chunked", "X-API-Key": API_KEY})
    assert response.status == 413
    assert json.loads(response.body) == {"message": "The upload is larger than the limit of 100 KB."}


def uploaded(visitor: Visitor, fields: list, *, chunked: bool = False):
    content_type, body = multipart([("csrf_token", visitor.csrf_token("/upload")), *fields])
    headers = {"Content-Type": content_type}
    if chunked:
        headers["Transfer-Encoding"] = "chunked"
        body = iter([body[:10], body[10:]])
    return visitor.request("POST", "/upload", body, headers)


def shown_uploads(visitor: Visitor) -> list[str]:
    return [a.get_text() for a in parse_html(visitor.get("/upload").body).select(".live-table a")]


def test_a_chunked_upload_reaches_the_app(running_preview):
    visitor = Visitor(running_preview.port)
    visitor.sign_in()
    response = uploaded(visitor, [("wordlist-upload", (b"chunked.txt", b"words\n"))], chunked=True)
    assert response.status == 303
    assert "chunked.txt" in shown_uploads(visitor)


def test_a_form_of_many_parts_is_parsed_by_the_app(running_preview):
    visitor = Visitor(running_preview.port)
    visitor.sign_in()
    extra = [(f"field-{n}", "x") for n in range(150)]
    response = uploaded(visitor, [*extra, ("wordlist-upload", (b"many.txt", b"words\n"))])
    assert response.status == 303 and "many.txt" in shown_uploads(visitor)
    too_many = uploaded(visitor, [(f"field-{n}", "x") for n in range(1000)])
    assert too_many.status == 413
    assert parse_html(too_many.body).find(role="alert").get_text().startswith(
        "The form has too many parts (at most 1000)")


def test_odd_file_names_get_an_answer_from_the_app(running_preview):
    visitor = Visitor(running_preview.port)
    visitor.sign_in()
    with_nul = uploaded(visitor, [("wordlist-upload", (b"nul\x00name.txt", b"words\n"))])
    assert with_nul.status == 303 and "nulname.txt" in shown_uploads(visitor)
    not_utf8 = uploaded(visitor, [("wordlist-upload", (b"caf\xe9.txt", b"words\n"))])
    assert not_utf8.status == 400
    assert parse_html(not_utf8.body).find(role="alert").get_text() == (
        "The form could not be read: a part's header, such as a file name, is not UTF-8 text.")


def test_a_huge_api_key_is_431_in_json(running_preview):
    response = Visitor(running_preview.port).get("/api/users/", **{"X-API-Key": "k" * 100_000})
    assert response.status == 431
    assert json.loads(response.body) == {"message": "The request headers are 97.7 KB, over the limit of 64 KB."}


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE", "PATCH"])
def test_the_running_api_answers_json_for_unknown_routes_and_methods(running_preview, method):
    visitor = Visitor(running_preview.port)
    for path in ("/api/nothing/", "/api/users/ada-lovelace"):
        response = visitor.request(method, path, b"" if method != "GET" else None, {"X-API-Key": API_KEY})
        if path == "/api/users/ada-lovelace" and method == "GET":
            assert response.status == 200
            continue
        assert response.status == (404 if path == "/api/nothing/" else 405)
        assert response.getheader("Content-Type") == "application/json"
        assert b"preview" not in response.body and json.loads(response.body)["message"]


def test_the_running_preview_forbids_framing(running_preview):
    visitor = Visitor(running_preview.port)
    visitor.sign_in()
    for path in ("/login", "/upload"):
        response = visitor.get(path)
        assert response.getheader("X-Frame-Options") == "DENY"
        assert response.getheader("Content-Security-Policy") == "frame-ancestors 'none'"


# ---------------------------------------------------------------- a running preview: restarts

def page_epoch(visitor: Visitor) -> str:
    return preview_scripts(visitor.get("/about/").body)[0]["data-epoch"]


def test_requests_in_flight_survive_python_edits(tmp_path):
    """Requests keep coming while two Python edits restart the app; an upload spans the first."""
    engine = tmp_path / "engine"  # a copy of the engine, so this test can edit its Python
    shutil.copytree(REPO / "sitegen", engine / "sitegen", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "site.py", engine)
    server = PreviewProcess(make_preview_project(tmp_path / "project"), engine=engine, env=PREVIEW_ENV)
    failures, answered, stop = [], [], threading.Event()

    def keep_asking():
        visitor = Visitor(server.port)
        while not stop.is_set():
            try:
                status = visitor.get("/about/").status
            except OSError as exc:
                status = repr(exc)
            (answered if status == 200 else failures).append(status)

    restarting = threading.Event()

    def slow_body(body: bytes):
        yield body[:100]
        restarting.wait(20)
        time.sleep(0.3)  # the old process has stopped accepting by now
        yield body[100:]

    uploader = Visitor(server.port)
    uploader.sign_in()
    content_type, body = multipart([("csrf_token", uploader.csrf_token("/upload")),
                                    ("wordlist-upload", (b"in-flight.txt", b"words\n"))])
    upload_result = []
    upload = threading.Thread(target=lambda: upload_result.append(uploader.request(
        "POST", "/upload", slow_body(body), {"Content-Type": content_type, "Content-Length": str(len(body))})))
    askers = [threading.Thread(target=keep_asking) for _ in range(4)]
    try:
        for thread in [upload, *askers]:
            thread.start()
        watcher = Visitor(server.port)
        for edit_number in range(2):
            before = page_epoch(watcher)
            pages = engine / "sitegen" / "routes.py"
            pages.write_text(pages.read_text() + f"# edit {edit_number}\n")
            deadline = time.monotonic() + 20
            while not any("changed: restarting" in line for line in server.lines[edit_number:]):
                assert time.monotonic() < deadline, server.lines
                time.sleep(0.02)
            restarting.set()
            while page_epoch(watcher) == before:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        time.sleep(0.3)
    finally:
        stop.set()
        for thread in [upload, *askers]:
            thread.join(30)
        server.stop()
    assert sum("restarting" in line for line in server.lines) == 2
    assert failures == [] and len(answered) > 50
    assert upload_result[0].status == 303
    [stored] = (tmp_path / "project" / "uploads" / LIVE_USER).iterdir()
    assert stored.read_bytes() == b"words\n"


# ---------------------------------------------------------------- the command

def test_a_network_host_needs_an_explicit_flag():
    from click.testing import CliRunner

    from sitegen.cli import main

    result = CliRunner().invoke(main, ["preview", "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert "--allow-network" in result.output


def test_a_broken_site_py_is_shown_until_it_is_fixed(make_project):
    root = make_project("events")
    site_file = root / "site.py"
    good = site_file.read_text()
    server = PreviewProcess(root, env=PREVIEW_ENV)
    try:
        visitor = Visitor(server.port)
        assert visitor.get("/").status == 200
        site_file.write_text(good.replace("    tags: list[str] = []\n", "    tags: list[str] = []\n    poster: Poster\n"))
        deadline = time.monotonic() + 20
        while (answer := visitor.get("/")).status != 503:
            assert time.monotonic() < deadline, server.lines
            time.sleep(0.1)
        assert parse_html(answer.body).code.get_text() == "site.py:30: NameError: name 'Poster' is not defined"
        refused = visitor.get("/", Host="evil.example")
        assert refused.status == 400 and "Unknown host 'evil.example'" in parse_html(refused.body).get_text()
        api = visitor.get("/api/events/")
        assert api.status == 503 and json.loads(api.body) == {
            "message": "site.py:30: NameError: name 'Poster' is not defined"}
        site_file.write_text(good)
        while (answer := visitor.get("/events/talk-1/")).status != 200:
            assert time.monotonic() < deadline, server.lines
            time.sleep(0.1)
        assert not any("Traceback" in line for line in server.lines)
    finally:
        server.stop()
