"""Word-list uploads in preview: who may upload, what is refused, how files are kept."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest

from support import LIVE_USER, csrf_token, parse_html, sign_in
from sitegen.errors import SiteError
from sitegen.live.uploads import STORED_NAME, list_uploads, shown_name, store_upload

WORDS = "aardvark\nabacus\nzymurgy\n".encode()


@pytest.fixture
def signed_in(live_client):
    sign_in(live_client)
    return live_client


def upload(client, name: str | None = "words.txt", data: bytes = WORDS, **extra):
    form = {"csrf_token": csrf_token(client), **extra}
    if name is not None:
        form["wordlist-upload"] = (io.BytesIO(data), name)
    return client.post("/upload", data=form, content_type="multipart/form-data")


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def alert(response) -> str:
    return parse_html(response.data).find(class_="live-error", role="alert").get_text()


def test_upload_needs_a_signed_in_user(live_client, live_app):
    response = live_client.get("/upload")
    assert response.status_code == 302 and response.headers["Location"] == "/login?next=/upload"
    refused = upload(live_client)  # a valid form, but nobody is signed in
    assert refused.status_code == 401
    assert files_under(live_app.config["SITE_UPLOAD_FOLDER"]) == []


def test_upload_without_csrf_token_is_refused(signed_in, live_app):
    response = signed_in.post("/upload", data={"wordlist-upload": (io.BytesIO(WORDS), "words.txt")},
                              content_type="multipart/form-data")
    assert response.status_code == 400
    assert files_under(live_app.config["SITE_UPLOAD_FOLDER"]) == []


def test_upload_is_stored_under_a_generated_name_and_listed(signed_in, live_app):
    response = upload(signed_in, "my words.txt")
    assert response.status_code == 303
    [stored] = files_under(live_app.config["SITE_UPLOAD_FOLDER"])
    assert stored.parent.name == LIVE_USER and STORED_NAME.match(stored.name)
    assert stored.read_bytes() == WORDS
    page = parse_html(signed_in.get("/upload").data)
    assert page.find(role="status").get_text() == "Uploaded my words.txt (24 bytes)."
    [link] = page.select(".live-table a")
    assert link.get_text() == "my words.txt" and link["href"] == f"/uploads/{stored.name}"


def test_download_is_a_text_attachment_with_nosniff(signed_in, live_app):
    data = b"<html><body><script>alert(1)</script></body></html>\n"
    upload(signed_in, "page.txt", data)
    href = parse_html(signed_in.get("/upload").data).select_one(".live-table a")["href"]
    response = signed_in.get(href)
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert response.headers["Content-Disposition"] == "attachment; filename=page.txt"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.data == data  # byte for byte: no preview links in a download


def test_only_your_own_uploads_can_be_downloaded(make_live_app, signed_in, live_app):
    upload(signed_in)
    [stored] = files_under(live_app.config["SITE_UPLOAD_FOLDER"])
    other_user = stored.parent.parent / "bob"
    other_user.mkdir()
    (other_user / stored.name).write_bytes(b"secret\n")
    stored.unlink()
    assert signed_in.get(f"/uploads/{stored.name}").status_code == 404
    assert signed_in.get("/uploads/..%2Fbob%2Fx.txt").status_code == 404


@pytest.mark.parametrize("name, data, message", [
    (None, WORDS, "No file was sent: the form needs a file in the 'wordlist-upload' field."),
    ("", WORDS, "No file was chosen: pick a .txt word list to upload."),
    ("x.txt.html", WORDS, "'x.txt.html' is not an allowed file type: the name must end in .txt."),
    ("words.html", WORDS, "'words.html' is not an allowed file type: the name must end in .txt."),
    ("words", WORDS, "'words' is not an allowed file type: the name must end in .txt."),
    ("words.txt", "mot\xe9".encode("latin-1"), "'words.txt' is not UTF-8 text."),
    ("words.txt", b"a\0b", "'words.txt' is not a text file (it contains NUL bytes)."),
    ("words.txt", b"", "'words.txt' is empty."),
])
def test_refused_uploads_say_why_and_write_nothing(signed_in, live_app, name, data, message):
    response = upload(signed_in, name, data)
    assert response.status_code == 400
    assert alert(response) == message
    assert files_under(live_app.config["SITE_UPLOAD_FOLDER"]) == []


def test_a_file_over_the_limit_is_413(make_live_app):
    app = make_live_app(SITE_UPLOAD_LIMIT=1000)
    client = app.test_client()
    sign_in(client)
    assert upload(client, data=b"a" * 1000).status_code == 303
    response = upload(client, "big.txt", b"a" * 1001)
    assert response.status_code == 413
    assert alert(response) == "'big.txt' is larger than the upload limit of 1000 bytes."
    assert len(files_under(app.config["SITE_UPLOAD_FOLDER"])) == 1


def test_a_request_over_the_limit_is_refused_before_its_body_is_read(signed_in, live_app):
    class Unreadable(io.BytesIO):
        def read(self, *args):
            raise AssertionError("the body was read")

        readline = readinto = read

    token = csrf_token(signed_in)
    response = signed_in.post("/upload", input_stream=Unreadable(),
                              environ_overrides={"CONTENT_LENGTH": str(live_app.config["MAX_CONTENT_LENGTH"] + 1)},
                              content_type="multipart/form-data; boundary=x",
                              headers={"X-CSRFToken": token})
    assert response.status_code == 413
    assert alert(response) == "The upload is larger than the limit of 2 MB."
    assert files_under(live_app.config["SITE_UPLOAD_FOLDER"]) == []


def stored_upload(signed_in, live_app, tmp_path, client_name):
    """Upload under ``client_name``; the one new file, which must sit in the user's folder."""
    before = set(tmp_path.rglob("*"))
    assert upload(signed_in, client_name).status_code == 303
    [stored] = set(tmp_path.rglob("*")) - before - {live_app.config["SITE_UPLOAD_FOLDER"],
                                                    live_app.config["SITE_UPLOAD_FOLDER"] / LIVE_USER}
    assert stored.parent == live_app.config["SITE_UPLOAD_FOLDER"] / LIVE_USER
    assert STORED_NAME.match(stored.name)
    return stored


@pytest.mark.parametrize("client_name, shown", [
    ("../../evil.txt", "evil.txt"),
    ("/etc/cron.d/evil.txt", "evil.txt"),
    ("CON.txt", "CON.txt"),
    ("ev\til\x7f.txt", "evil.txt"),
])
def test_client_paths_never_reach_the_disk(signed_in, live_app, tmp_path, client_name, shown):
    stored = stored_upload(signed_in, live_app, tmp_path, client_name)
    assert [u.shown_name for u in list_uploads(stored.parent)] == [shown]


@pytest.mark.parametrize("client_name", ["..\\..\\evil.txt", "C:\\Windows\\evil.txt"])
def test_windows_paths_never_reach_the_disk(signed_in, live_app, tmp_path, client_name):
    # Werkzeug 3.1.9 reads a backslash in a quoted file name as an escape, so
    # the name that arrives depends on its version; no separator survives either way.
    stored = stored_upload(signed_in, live_app, tmp_path, client_name)
    [shown] = [u.shown_name for u in list_uploads(stored.parent)]
    assert shown.endswith("evil.txt") and not {"/", "\\"} & set(shown)


def test_a_second_file_in_one_upload_is_refused_not_dropped(signed_in, live_app):
    form = {"csrf_token": csrf_token(signed_in),
            "wordlist-upload": [(io.BytesIO(b"one\n"), "one.txt"), (io.BytesIO(b"two\n"), "two.txt")]}
    response = signed_in.post("/upload", data=form, content_type="multipart/form-data")
    assert response.status_code == 400
    assert alert(response) == "One file per upload, please: this form sent 2 files, and none was stored."
    assert files_under(live_app.config["SITE_UPLOAD_FOLDER"]) == []


@pytest.mark.parametrize("client_name, shown", [
    ("evil\u202etxt.exe.txt", "eviltxt.exe.txt"),  # right-to-left override
    ("a\u200bb\u2066.txt", "ab.txt"),  # zero-width space, left-to-right isolate
    ("x\u2028y.txt", "xy.txt"),  # line separator
])
def test_invisible_and_direction_characters_are_not_shown(signed_in, live_app, tmp_path, client_name, shown):
    stored = stored_upload(signed_in, live_app, tmp_path, client_name)
    assert [u.shown_name for u in list_uploads(stored.parent)] == [shown]
    assert parse_html(signed_in.get("/upload").data).select_one(".live-table a").get_text() == shown


def test_a_name_stored_before_is_shown_without_its_direction_override(tmp_path):
    stored = store_upload(tmp_path, "evil\u202etxt.exe.txt", b"x\n")
    assert stored.shown_name == "eviltxt.exe.txt"


def test_two_uploads_with_the_same_name_are_both_kept(signed_in, live_app):
    upload(signed_in, "words.txt", b"first\n")
    upload(signed_in, "words.txt", b"second\n")
    stored = files_under(live_app.config["SITE_UPLOAD_FOLDER"])
    assert sorted(p.read_bytes() for p in stored) == [b"first\n", b"second\n"]
    assert [a.get_text() for a in parse_html(signed_in.get("/upload").data).select(".live-table a")] \
        == ["words.txt", "words.txt"]


def test_concurrent_uploads_are_all_kept(tmp_path):
    folder = tmp_path / "uploads" / "ada"
    barrier = threading.Barrier(8)

    def store(number: int) -> None:
        barrier.wait()
        store_upload(folder, "words.txt", f"{number}\n".encode())

    threads = [threading.Thread(target=store, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(p.read_text() for p in files_under(folder)) == [f"{n}\n" for n in range(8)]
    assert len(list_uploads(folder)) == 8


def test_upload_limit_from_the_environment(monkeypatch, make_live_app):
    for value, expected in (("", 2 * 1024 * 1024), ("500KB", 500 * 1024), ("3mb", 3 * 1024 * 1024),
                            ("100000", 100000)):
        monkeypatch.setenv("SITE_UPLOAD_LIMIT", value)
        config = make_live_app().config
        assert config["SITE_UPLOAD_LIMIT"] == expected
        assert config["MAX_CONTENT_LENGTH"] > expected
    monkeypatch.setenv("SITE_UPLOAD_LIMIT", "lots")
    with pytest.raises(SiteError, match="SITE_UPLOAD_LIMIT='lots': expected a size such as 2MB"):
        make_live_app()


def test_a_long_client_name_is_shortened_but_keeps_its_extension():
    assert shown_name("a" * 300 + ".txt") == "a" * 116 + ".txt"
