"""The state's table of pages: kept by route, it answers as the plain dict it replaces."""

from __future__ import annotations

import random

import pytest

from sitegen.errors import SiteError
from sitegen.freeze import build, freeze_site, incremental
from sitegen.freeze.pages import Pages

SHARED = (("templates/base.html", "templates/profile.html"), ("index.html", "static/site.css"))


def profile(slug: str, links: tuple[str, ...] = SHARED[1]) -> tuple[str, tuple]:
    return f"/users/{slug}/", (f"users/{slug}/index.html", ("users", slug), SHARED[0], links)


def sample_pages() -> dict[str, tuple]:
    pages = dict(profile(f"user-{number:03d}") for number in range(30))
    pages.update([
        profile("odd", links=("users/user-001/index.html",)),  # links of its own
        ("/users/", ("users/index.html", None, ("users:*",), ("users/user-000/index.html",))),
        ("/stores/users/", ("stores/users/index.html", ("stores", "users"), (), ())),  # the slug twice in its URL
        ("/users/caf%C3%A9/", ("users/café/index.html", ("users", "café"), (), ())),  # its URL does not show it
        ("/sitemap.xml", ("sitemap.xml", None, ("users:*", "stores:*"), ())),
    ])
    return pages


def test_pages_answer_as_a_dict_through_any_edits():
    expected = sample_pages()
    pages = Pages()
    for url, page in expected.items():
        pages[url] = page
    assert pages.columns and pages.whole  # the profiles in a column, the rest whole
    chooser = random.Random(13)
    for _ in range(300):
        url = chooser.choice(list(expected) + ["/users/new/", "/about/"])
        action = chooser.choice(["set", "owner", "delete"])
        if action == "set":
            page = profile(url.split("/")[2])[1] if url.startswith("/users/") and url != "/users/" else (
                "about/index.html", None, (), ())
            expected[url], pages[url] = page, page
        elif action == "owner" and url in expected:  # the same URL as a page that belongs to no record
            page = (expected[url][0], None, ("content/site.yaml",), ())
            expected[url], pages[url] = page, page
        elif url in expected:
            del expected[url], pages[url]
        assert len(pages) == len(expected)
        assert dict(pages.items()) == expected
        assert sorted(pages) == sorted(expected)
        assert sorted(pages.files()) == sorted(page[0] for page in expected.values())
        assert all(pages[url] == page and url in pages for url, page in expected.items())
        assert "/users/nobody/" not in pages and "/nowhere/" not in pages


def test_the_questions_a_freeze_asks_of_the_last_pages():
    expected = sample_pages()
    pages = Pages()
    pages.update(expected.items())
    assert pages.owned() == {"users": {f"user-{number:03d}" for number in range(30)} | {"odd", "café"},
                             "stores": {"users"}}
    changed = {"templates/profile.html", "users:*"}
    assert dict(pages.depending_on(changed)) == {
        url: page[1] for url, page in expected.items() if not changed.isdisjoint(page[2])}
    records = {"users": {f"user-{number:03d}": b"" for number in range(0, 30, 2)}, "stores": {}}
    kept = pages.kept(records, ["/users/"])
    assert dict(kept.items()) == {url: page for url, page in expected.items()
                                  if (page[1][1] in records[page[1][0]] if page[1] else url == "/users/")}
    assert sorted(pages.files_gone_from(kept)) == sorted(
        page[0] for url, page in expected.items() if url not in dict(kept.items()))
    whole_files = {page[0] for page in pages.whole.values()}
    assert all(pages.has_file(page[0], whole_files) for page in expected.values())
    assert not pages.has_file("users/nobody/index.html", whole_files)


def test_whether_a_page_must_be_rendered_again_is_answered_exactly():
    pages = Pages()
    pages.update(sample_pages().items())
    pages["/users/"] = ("users/index.html", None, ("static/a.css.map", "users:ann.name", ""), ("",))
    assert pages["/users/"] == ("users/index.html", None, ("static/a.css.map", "users:ann.name", ""), ("",))
    many = {f"key-{number}" for number in range(40)}  # too many to search the packed dependencies for
    assert not pages.dirty("/users/", {"static/a.css"})  # written inside another dependency: not one itself
    assert not pages.dirty("/users/", many | {"static/a.css"})
    assert pages.dirty("/users/", {"users:ann.name"}) and pages.dirty("/users/", many | {"users:ann.name"})
    assert list(pages.depending_on({"users:ann.name"})) == [("/users/", None)]
    assert not pages.dirty("/users/user-001/", {"users:ann.name"})
    assert pages.dirty("/users/user-001/", {"templates/profile.html"})
    assert pages.dirty("/users/user-001/", {"content/users/user-001.yaml"})  # its owner's file
    assert pages.dirty("/sitemap.xml", {"users:*"}) and not pages.dirty("/sitemap.xml", {"events:*"})
    assert pages.dirty("/a/new/page/", set())


def test_the_state_keeps_its_pages_through_a_round_trip(tmp_path):
    pages = Pages()
    pages.update(sample_pages().items())
    state = incremental.State(b"f" * 16, {"content/site.yaml": (1, 2, b"d" * 16)}, None, {"users": {}}, {}, pages)
    path = tmp_path / "state.marshal"
    with open(path, "wb") as file:
        state.write(file)
    head_length = int.from_bytes(path.read_bytes()[:incremental.HEAD_LENGTH_BYTES], "little")
    stored = incremental.StoredState(b"f" * 16, state.sources, len(pages), path,
                                     incremental.HEAD_LENGTH_BYTES + head_length)
    assert dict(stored.load().pages.items()) == sample_pages()


def test_a_freeze_stores_each_page_as_its_worker_reported_it(make_project, monkeypatch):
    root = make_project()
    reported = {}
    take_pages = build.Build._take_pages

    def note(self, batch):
        reported.update((url, (file, owner)) for url, file, owner, _, _ in batch)
        take_pages(self, batch)

    monkeypatch.setattr(build.Build, "_take_pages", note)
    freeze_site(root, root / "build", jobs=1)
    stored = incremental.BuildFolders(root / "build").load_state(incremental.fingerprint(root, None)).load()
    assert stored.pages.columns  # record pages were stored by route
    assert {url: page[:2] for url, page in stored.pages.items()} == reported


def test_the_workers_forked_before_the_scan_end_with_the_freeze_whatever_it_did(make_project):
    import multiprocessing

    root = make_project()
    freeze_site(root, root / "small", jobs=3)  # too few pages to share out: no worker gets work
    assert multiprocessing.active_children() == []
    (root / "content/users/outside.yaml").symlink_to("/etc/hostname")
    with pytest.raises(SiteError, match="outside the project"):  # the scan stops the freeze
        freeze_site(root, root / "refused", jobs=3)
    assert multiprocessing.active_children() == []
