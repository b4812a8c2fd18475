"""The frozen site: one page per record, every link resolves, and freezing is safe."""

from __future__ import annotations

import filecmp
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit
from xml.etree import ElementTree

import pytest
from click.testing import CliRunner

from support import EXAMPLE, parse_html, snapshot
from sitegen.app import create_app
from sitegen.cli import main
from sitegen.content.loader import load_content
from sitegen.freeze import freeze_site
from sitegen.freeze.build import MARKER
from sitegen.site import load_site


def page(build: Path, url_path: str):
    return parse_html((build / url_path.lstrip("/") / "index.html").read_bytes())


def internal_links(build: Path):
    """(page, link) for every href/src of every HTML page that stays on the site."""
    for html in sorted(build.rglob("*.html")):
        soup = parse_html(html.read_bytes())
        for tag in soup.find_all(href=True) + soup.find_all(src=True):
            link = tag.get("href") or tag.get("src")
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or link.startswith("#"):
                continue
            yield html, link


def resolve(build: Path, link: str, base_path: str) -> Path:
    path = urlsplit(link).path
    assert path.startswith(base_path), f"{link} is outside the base path {base_path}"
    relative = path[len(base_path):]
    return build / (relative + "index.html" if relative.endswith("/") or not relative else relative)


def test_every_user_gets_a_profile_with_their_data(frozen_build, example_content):
    for user in example_content.users.values():
        soup = page(frozen_build, f"/users/{user.slug}/")
        assert soup.h1.get_text(strip=True) == user.name
        assert soup.title.get_text() == f"Profile of {user.name} · Wordsmiths"
        assert soup.find("time")["datetime"] == user.joined.isoformat()
        awards = [li.get_text(strip=True) for li in soup.select("ul.awards li")]
        assert awards == list(user.awards)
        if not user.awards:
            assert f"{user.name} has no awards" in soup.get_text()


def test_every_store_gets_a_storefront(frozen_build, example_content):
    for store in example_content.stores.values():
        soup = page(frozen_build, f"/stores/{store.slug}/")
        assert soup.h1.get_text(strip=True) == store.name
        assert f"Yes! We are located in {store.city}" in soup.get_text()
        assert soup.select_one("a[href^='tel:']").get_text() == store.phone


def test_lists_link_every_record(frozen_build, example_content):
    users = page(frozen_build, "/users/")
    assert {a["href"] for a in users.select("#user-list a")} == \
        {f"/users/{name}/" for name in example_content.users}
    stores = page(frozen_build, "/stores/")
    assert {a["href"] for a in stores.select(".store-grid a")} == \
        {f"/stores/{slug}/" for slug in example_content.stores}
    home = page(frozen_build, "/")
    assert {a["href"] for a in home.select(".city-list a")} == \
        {f"/stores/{slug}/" for slug in example_content.stores}


def test_every_internal_link_resolves_to_a_file(frozen_build):
    checked = 0
    for html, link in internal_links(frozen_build):
        assert resolve(frozen_build, link, "/").is_file(), f"{html}: broken link {link}"
        checked += 1
    assert checked > 100


def test_static_assets_are_copied(frozen_build):
    for asset in ("styles/site.css", "scripts/site.js", "images/logo.svg"):
        assert (frozen_build / "static" / asset).read_bytes() == (EXAMPLE / "static" / asset).read_bytes()


def test_404_page_sitemap_and_robots(frozen_build, example_content):
    soup = parse_html((frozen_build / "404.html").read_bytes())
    assert soup.h1.get_text() == "Page not found"
    sitemap = ElementTree.parse(frozen_build / "sitemap.xml").getroot()
    locs = [loc.text for loc in sitemap.iter("{http://www.sitemaps.org/schemas/sitemap/0.9}loc")]
    assert "https://wordsmiths.example.org/users/guido-van-rossum/" in locs
    assert len(locs) == 4 + len(example_content.users) + len(example_content.stores)
    robots = (frozen_build / "robots.txt").read_text()
    assert "Sitemap: https://wordsmiths.example.org/sitemap.xml" in robots


def test_nothing_but_the_site_is_frozen(frozen_build):
    names = {p.name for p in frozen_build.iterdir()}
    assert names == {"index.html", "404.html", "about", "users", "stores", "static",
                     "sitemap.xml", "robots.txt", MARKER}


def test_sub_path_build_links_stay_under_the_sub_path(tmp_path):
    dest = tmp_path / "build"
    freeze_site(EXAMPLE, dest, base_url="https://example.org/sub/")
    assert (dest / "users" / "guido-van-rossum" / "index.html").is_file()
    checked = 0
    for html, link in internal_links(dest):
        assert resolve(dest, link, "/sub/").is_file(), f"{html}: broken link {link}"
        checked += 1
    assert checked > 100
    canonical = page(dest, "/users/ada-lovelace/").find("link", rel="canonical")["href"]
    assert canonical == "https://example.org/sub/users/ada-lovelace/"


def test_two_freezes_are_byte_identical(frozen_build, tmp_path):
    again = tmp_path / "again"
    freeze_site(EXAMPLE, again)
    comparison = filecmp.dircmp(frozen_build, again)
    assert snapshot(frozen_build) == snapshot(again), comparison.report()


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda root: (root / "content/users/ada-lovelace.yaml").write_text("name: [\n"),
         "content/users/ada-lovelace.yaml:2:1: invalid YAML"),
        (lambda root: (root / "content/users/ada-lovelace.yaml").write_text(
            "joined: 2020-01-01\n"),
         "content/users/ada-lovelace.yaml:1:1: missing required field 'name'"),
        (lambda root: (root / "content/stores/london.yaml").write_text(
            "city: London\nname: L\naddress: A\nphone: yes\nhours: {Mon: x}\n"),
         "content/stores/london.yaml:4:8: expected text, got a boolean"),
        (lambda root: (root / "content/users/Bad..Slug.yaml").write_text("name: x\n"),
         "content/users/Bad..Slug.yaml:1:1: name 'Bad..Slug' is not a valid slug"),
        (lambda root: (root / "templates/profile.html").write_text(
            '{% extends "base.html" %}\n{% block main %}\n<p>{{ nickname }}</p>\n{% endblock %}\n'),
         "templates/profile.html:3: 'nickname' is undefined (while freezing /users/"),
        (lambda root: (root / "templates/about.html").write_text("{% if %}\n"),
         "templates/about.html:1: Expected an expression"),
    ],
    ids=["malformed-yaml", "missing-field", "wrong-type", "unsafe-slug", "undefined-variable", "template-syntax"],
)
def test_bad_input_exits_1_naming_file_and_line_and_keeps_the_last_build(make_project, breakage, message):
    root = make_project()
    runner = CliRunner()
    assert runner.invoke(main, ["--root", str(root), "freeze"]).exit_code == 0
    before, state_before = snapshot(root / "build"), snapshot(root / ".build.state")
    breakage(root)
    result = runner.invoke(main, ["--root", str(root), "freeze"])
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output
    assert snapshot(root / "build") == before
    assert snapshot(root / ".build.state") == state_before
    # Nothing left behind but what was there (and Python's cache of site.py, made when the site loads).
    assert sorted(p.name for p in root.iterdir() if p.name != "__pycache__") == [
        ".build.state", "build", "content", "site.py", "static", "templates"]


def test_a_first_freeze_reports_a_bad_file_name_and_a_broken_record_at_once(make_project):
    root = make_project()
    (root / "content/users/Bad..Slug.yaml").write_text("name: x\n")
    (root / "content/users/ada-lovelace.yaml").write_text("joined: 2020-01-01\n")
    result = CliRunner().invoke(main, ["--root", str(root), "freeze"])
    assert result.exit_code == 1
    assert "content/users/Bad..Slug.yaml:1:1: name 'Bad..Slug' is not a valid slug" in result.output
    assert "content/users/ada-lovelace.yaml:1:1: missing required field 'name'" in result.output
    assert not (root / "build").exists()


def test_refuses_to_replace_a_folder_it_did_not_make(make_project):
    root = make_project()
    precious = root / "build"
    precious.mkdir()
    (precious / "thesis.txt").write_text("years of work")
    result = CliRunner().invoke(main, ["--root", str(root), "freeze"])
    assert result.exit_code == 1
    assert "not empty and was not made by a freeze" in result.output
    assert (precious / "thesis.txt").read_text() == "years of work"


@pytest.mark.parametrize("collection", ["users", "stores"])  # listed in pages of 24, and on one page
def test_a_collection_with_no_records_freezes_its_listing_page_as_the_preview_shows_it(make_project, collection):
    root = make_project()
    assert freeze_site(root, root / "build").rendered
    for record in (root / "content" / collection).iterdir():
        record.unlink()
    freeze_site(root, root / "build")  # from the last build
    site = load_site(root)
    preview = create_app(site, load_content(site)).test_client()
    listing = f"{collection}/index.html"
    assert (root / "build" / listing).read_bytes() == preview.get(f"/{collection}/").data
    clean = freeze_site(root, root / "clean", clean=True).destination
    assert snapshot(clean) == snapshot(root / "build")


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_an_output_that_cannot_be_written_is_one_line_after_the_build_is_done(make_project):
    root = make_project()
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, str(root / "site.py"), "freeze"], stdout=full,
                              stderr=subprocess.PIPE, text=True, cwd=root, timeout=120)
    assert (done.returncode, done.stderr) == (
        1, f"froze {root / 'build'}, but could not write the line that says so: No space left on device\n")
    assert (root / "build" / "index.html").is_file()


def test_a_file_where_a_collections_folder_belongs_is_an_empty_collection_as_in_the_preview(make_project):
    root = make_project()
    stores = root / "content" / "stores"
    kept = {path.name: path.read_bytes() for path in stores.iterdir()}
    shutil.rmtree(stores)
    stores.write_text("a note where the folder was\n")
    freeze_site(root, root / "build")
    site = load_site(root)
    preview = create_app(site, load_content(site)).test_client()
    assert (root / "build" / "stores" / "index.html").read_bytes() == preview.get("/stores/").data
    assert not [path for path in (root / "build" / "stores").iterdir() if path.is_dir()]

    stores.unlink()
    stores.mkdir()
    for name, data in kept.items():
        (stores / name).write_bytes(data)
    assert freeze_site(root, root / "build").rendered > len(kept)  # each storefront, and the pages listing them
    assert snapshot(root / "build") == snapshot(freeze_site(root, root / "again", clean=True).destination)


@pytest.mark.parametrize("dest", [".", "content", "static/out", ".."])
def test_refuses_to_freeze_over_the_project(make_project, dest):
    root = make_project()
    result = CliRunner().invoke(main, ["--root", str(root), "freeze", "--dest", str(root / dest)])
    assert result.exit_code == 1
    assert "holds the project's own files" in result.output


UNUSABLE_BASE_URLS = {"ftp://example.org/": "expected an http(s) URL", "http://[::1/": "Invalid IPv6 URL",
                      "https://example.org/a%20b/": "path may hold only", "https://example.org/?q=1": "no query",
                      "https://example.org/#top": "no query or fragment", "https://example.org:99999/": "Port out of range",
                      "https:///sub/": "expected a host name"}


@pytest.mark.parametrize("url", UNUSABLE_BASE_URLS)
def test_an_unusable_base_url_is_refused_in_one_line_before_any_page(make_project, url):
    root = make_project()
    result = CliRunner().invoke(main, ["--root", str(root), "freeze", "--base-url", url, "--dest", str(root / "out")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert UNUSABLE_BASE_URLS[url] in result.output and not (root / "out").exists()
    settings = root / "content/site.yaml"
    settings.write_text(re.sub(r"(?m)^base_url:.*$", f"base_url: '{url}'", settings.read_text()))
    result = CliRunner().invoke(main, ["--root", str(root), "freeze", "--dest", str(root / "out")])
    assert result.exit_code == 1 and UNUSABLE_BASE_URLS[url] in result.output
    assert "content/site.yaml:" in result.output.splitlines()[-1] and "Traceback" not in result.output


USUAL_FREEZES = [["freeze"], ["freeze", "--clean"], ["freeze", "--dest", "out", "--jobs", "2", "--clean"],
                 ["freeze", "-j", "1", "--base-url", "https://example.org/sub"], ["--root", "ROOT", "freeze"],
                 ["freeze", "--watch", "--clean"]]
LEFT_TO_CLICK = [["freeze", "--help"], ["freeze", "--jobs", "0"], ["freeze", "--jobs", "two"], ["freeze", "--dest=out"],
                 ["freeze", "--base-url", "ftp://example.org/"], ["freeze", "--clean", "--clean"], ["freeze", "--dest"],
                 ["freeze", "--dest", "-x"], ["--root", "MISSING", "freeze"], ["--root", "ROOT"], ["preview"], []]


@pytest.mark.parametrize("args", USUAL_FREEZES + LEFT_TO_CLICK)
def test_the_usual_freeze_command_lines_mean_without_click_what_they_mean_with_it(make_project, monkeypatch, args):
    from sitegen import freeze_command
    from sitegen.site import load_site

    root = make_project()
    usual = args in USUAL_FREEZES
    args = [{"ROOT": str(root), "MISSING": str(root / "missing")}.get(arg, arg) for arg in args]
    plain = freeze_command.plain_freeze_arguments(args)
    if not usual:
        assert plain is None
        return
    site = load_site(root)
    run_by_click = []
    monkeypatch.setattr(freeze_command, "freeze", lambda site, *given: run_by_click.append((site.root, *given)))
    assert CliRunner().invoke(main, args, obj=site).exit_code == 0
    assert run_by_click == [((plain.pop("root") or root).resolve(), *plain.values())]


def test_a_freeze_run_without_click_fails_in_one_line(make_project):
    root = make_project()
    (root / "content/users/guido-van-rossum.yaml").write_text("name: [unclosed\n")
    done = subprocess.run([sys.executable, str(EXAMPLE / "site.py"), "--root", str(root), "freeze", "--jobs", "1"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stdout == "" and len(done.stderr.strip().splitlines()) == 1
    assert done.stderr.startswith("content/users/guido-van-rossum.yaml:")


def test_freeze_command_end_to_end(make_project):
    root = make_project()
    done = subprocess.run([sys.executable, str(EXAMPLE / "site.py"), "--root", str(root), "freeze"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Froze 32 pages into ")
    assert (root / "build" / "users" / "guido-van-rossum" / "index.html").is_file()
