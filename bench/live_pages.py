"""Measure the live pages: sign-in timing for unknown vs known users, the cost of
the preview links on each HTML page, and a full-size upload.

Run by hand from the project root: `python bench/live_pages.py`. Everything it
writes goes to a temporary folder. Runs alternate (A B A B) and medians are printed.
"""

from __future__ import annotations

import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bs4 import BeautifulSoup  # noqa: E402

from sitegen.live.accounts import ACCOUNTS_FILE, add_account  # noqa: E402
from sitegen.app import create_app  # noqa: E402
from sitegen.content.loader import load_content  # noqa: E402
from sitegen.site import load_site  # noqa: E402


def token(client, path="/login") -> str:
    return BeautifulSoup(client.get(path).data, "html.parser").find("input", {"name": "csrf_token"})["value"]


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> None:
    site = load_site(ROOT)
    content = load_content(site)
    with tempfile.TemporaryDirectory() as temp:
        temp = Path(temp)
        add_account(temp, "ada", "correct horse battery staple")  # the default scrypt hash, in instance/
        settings = {"SECRET_KEY": "b" * 32, "SITE_ACCOUNTS_FILE": temp / ACCOUNTS_FILE,
                    "SITE_UPLOAD_FOLDER": temp / "uploads", "SITE_LOGIN_MAX_FAILURES": 10**6}
        live = create_app(site, content, live=True, config=settings)
        plain = create_app(site, content)
        client = live.test_client()

        def fail(username):
            form = {"csrf_token": token(client), "username": username, "password": "wrong"}
            return lambda: client.post("/login", data=form)

        unknown, known = [], []
        for _ in range(15):
            unknown.append(timed(fail("nobody")))
            known.append(timed(fail("ada")))
        print(f"failed sign-in, unknown user:   median {statistics.median(unknown) * 1000:6.1f} ms")
        print(f"failed sign-in, wrong password: median {statistics.median(known) * 1000:6.1f} ms")

        plain_client = plain.test_client()
        with_links, without = [], []
        for _ in range(300):
            with_links.append(timed(lambda: client.get("/")))
            without.append(timed(lambda: plain_client.get("/")))
        print(f"GET / with preview links:       median {statistics.median(with_links) * 1000:6.2f} ms")
        print(f"GET / frozen app (no links):    median {statistics.median(without) * 1000:6.2f} ms")

        form = {"csrf_token": token(client), "username": "ada", "password": "correct horse battery staple"}
        client.post("/login", data=form)
        words = (b"aardvark\n" * (2 * 1024 * 1024 // 9))[: 2 * 1024 * 1024]
        uploads = []
        for _ in range(10):
            data = {"csrf_token": token(client, "/upload"), "wordlist-upload": (io.BytesIO(words), "w.txt")}
            uploads.append(timed(lambda: client.post("/upload", data=data, content_type="multipart/form-data")))
        print(f"2 MB upload, checked + stored:  median {statistics.median(uploads) * 1000:6.1f} ms")


if __name__ == "__main__":
    main()
