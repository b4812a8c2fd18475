"""The pytest plugin a site's own tests use (sitegen/testing.py): each generic check passes on a good
fixture site, and fails on a site broken on purpose, naming the page and the record's content file."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support import REPO, SITES, copy_site
from sitegen import testing
from sitegen.content.loader import load_content
from sitegen.site import load_site

FIXTURE_SITES = sorted(path.name for path in SITES.iterdir() if (path / "site.py").is_file())

# A template that drops a declared field: a store's page no longer shows its phone number
# (the tel: link keeps it, but without its spaces: not as the record has it).
DROP_PHONE = ('<p><a href="tel:{{ store.phone|replace(\' \', \'\') }}">{{ store.phone }}</a></p>',
              '<p><a href="tel:{{ store.phone|replace(\' \', \'\') }}">Call us</a></p>')
# A link to a missing file: every profile shows a photo that static/ does not have.
MISSING_PHOTO = ("<h1>{{ user.name }}</h1>",
                 "<h1>{{ user.name }}</h1>\n<img src=\"{{ url_for('static', filename='photos/' + user.slug + '.jpg') }}\""
                 " alt=\"\">")


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{path} no longer holds {old!r}"
    path.write_text(text.replace(old, new, 1))


def frozen(root: Path, dest: Path) -> testing.FrozenSite:
    site = load_site(root)
    return testing.freeze_for_tests(site, dest, load_content(site))


def frozen_with_preview(name: str, folder: Path) -> tuple[testing.FrozenSite, object]:
    root = copy_site(SITES / name, folder / "site")
    return frozen(root, folder / "build"), testing.open_preview(root, folder)


@pytest.fixture(scope="module", params=FIXTURE_SITES)
def good(request, tmp_path_factory):
    """Each good fixture site, frozen, with its preview."""
    return frozen_with_preview(request.param, tmp_path_factory.mktemp("good"))


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """The example fixture site, frozen, with its preview."""
    return frozen_with_preview("example", tmp_path_factory.mktemp("example"))


@pytest.fixture(scope="module")
def dropped_field(tmp_path_factory):
    """The example fixture site with a template that drops a declared field, frozen."""
    root = copy_site(SITES / "example", tmp_path_factory.mktemp("dropped") / "site")
    edit(root / "templates/store.html", *DROP_PHONE)
    return frozen(root, root.parent / "build")


@pytest.fixture
def tampered(example, tmp_path):
    """A copy of the example's build that a test may spoil, indexed again."""
    site, _ = example
    shutil.copytree(site.path, tmp_path / "build")
    return lambda: testing.index_build(site.site, site.content, tmp_path / "build")


# ---------------------------------------------------------------- every check passes on a good site


def assert_every_check_passes(site: testing.FrozenSite, preview, folder: Path) -> None:
    assert site.records and all(found.page for found in site.records)
    assert testing.missing_record_fields(site) == []
    assert testing.broken_links(site) == []
    assert testing.pages_missing_from_sitemap(site) == []
    assert testing.preview_only_leaks(site, preview) == []
    assert testing.preview_differences(site, preview) == []
    assert testing.malformed_pages(site) == []
    assert testing.freeze_differences(site, folder / "again") == []


def test_every_check_passes_on_a_good_site(good, tmp_path):
    assert_every_check_passes(*good, tmp_path)


def test_every_check_passes_on_a_site_published_under_a_sub_path(tmp_path):
    root = copy_site(SITES / "example", tmp_path / "site")
    edit(root / "content/site.yaml", "base_url: https://wordsmiths.example.org/", "base_url: https://example.org/sub/")
    site = frozen(root, tmp_path / "build")
    assert site.base_path == "/sub/" and site.href("/users/") == "/sub/users/"
    assert_every_check_passes(site, testing.open_preview(root, tmp_path), tmp_path)
    page = site.path / "about/index.html"
    page.write_bytes(page.read_bytes().replace(b"</main>", b'<a href="/stores/">forgets the sub-path</a></main>'))
    assert testing.broken_links(testing.index_build(site.site, site.content, site.path)) == [
        "/about/ (about/index.html): <a> links to /stores/, outside the site's base path /sub/"]


def test_the_frozen_site_knows_each_records_page_and_content_file(good):
    site, _ = good
    assert site.records
    for found in site.records:
        assert (site.path / found.file).is_file()
        assert (site.site.root / found.source).is_file()
        assert site.page_of(found.record, found.endpoint).source == found.source
    for collection, urls in site.listings.items():
        assert [page.url for page in site.listing(collection)] == urls


# ---------------------------------------------------------------- and fails on a broken one, naming page and file


def test_a_template_that_drops_a_field_fails_naming_page_and_content_file(dropped_field):
    problems = testing.missing_record_fields(dropped_field)
    assert len(problems) == len(dropped_field.content.stores)
    assert ("/stores/london/ (stores/london/index.html, from content/stores/london.yaml) does not show its "
            "field 'phone': '+44 20 7946 0018' is not on the page") in problems
    assert testing.missing_record_fields(dropped_field, {"stores": ["phone"]}) == []


def test_a_link_to_a_missing_file_fails_naming_page_and_content_file(tampered):
    site = tampered()
    (site.path / "static/images/logo.svg").unlink()  # every page shows the logo
    problems = testing.broken_links(site)
    assert len(problems) == len(site.pages)
    assert ("/users/ada-lovelace/ (users/ada-lovelace/index.html, from content/users/ada-lovelace.yaml): "
            "<img> links to /static/images/logo.svg, but the build has no static/images/logo.svg") in problems


def test_a_freeze_that_stops_is_told_with_the_content_file_of_each_record_page_it_names(example):
    site, _ = example
    told = testing.with_content_files("link /static/photos/ada.jpg on page /users/ada-lovelace/ leads nowhere\n"
                                      "link /x on page /about/ leads nowhere", site.site, site.content)
    assert told == ("link /static/photos/ada.jpg on page /users/ada-lovelace/ (from content/users/ada-lovelace.yaml)"
                    " leads nowhere\nlink /x on page /about/ leads nowhere")


def test_a_page_missing_from_the_sitemap_is_named(tampered):
    site = tampered()
    sitemap = site.path / "sitemap.xml"
    url = site.origin + "/users/ada-lovelace/"
    sitemap.write_text(sitemap.read_text().replace(f"<loc>{url}</loc>", "<loc>https://wordsmiths.example.org/gone/</loc>"))
    assert testing.pages_missing_from_sitemap(site) == [
        "sitemap.xml lists https://wordsmiths.example.org/gone/, but the build has no gone/index.html",
        "/users/ada-lovelace/ (users/ada-lovelace/index.html, from content/users/ada-lovelace.yaml) "
        "is not in sitemap.xml"]


def test_preview_only_pages_forms_and_assets_in_the_build_are_named(tampered, example):
    _, preview = example
    site = tampered()
    page = site.path / "users/ada-lovelace/index.html"
    page.write_bytes(page.read_bytes().replace(b"</main>", b'<form method="post" action="/login"></form></main>'))
    (site.path / "login").write_text("a live page, frozen")
    login = testing.Page("/login", "", preview.get("/login").data)
    stylesheets = [site.file_of(tag["href"], login) for tag in login.soup.select("link[rel=stylesheet]")]
    [stylesheet] = {file for file in stylesheets if file not in site.files()}
    (site.path / stylesheet).parent.mkdir(parents=True, exist_ok=True)
    (site.path / stylesheet).write_text("/* the sign-in page's style */")
    problems = testing.preview_only_leaks(tampered(), preview)
    assert ("/users/ada-lovelace/ (users/ada-lovelace/index.html, from content/users/ada-lovelace.yaml): "
            "<form> links to the preview-only /login (live.login)") in problems
    assert "login is the preview-only page live.login" in problems
    assert f"{stylesheet} is used only by the preview-only page /login, yet it is in the build" in problems


def test_a_file_the_preview_serves_otherwise_is_named(tampered, example):
    _, preview = example
    site = tampered()
    page = site.path / "stores/london/index.html"
    page.write_bytes(page.read_bytes().replace(b"</h1>", b" (closed)</h1>", 1))
    [problem] = testing.preview_differences(site, preview)
    assert problem.startswith("/stores/london/ (stores/london/index.html, from content/stores/london.yaml): "
                              "the preview serves other bytes than freeze wrote")
    assert "(closed)" in problem


def test_malformed_html_is_named_with_its_line(tampered):
    site = tampered()
    page = site.path / "stores/london/index.html"
    page.write_bytes(page.read_bytes().replace(b"</h1>", b"</h1></span>", 1))
    [problem] = testing.malformed_pages(tampered())
    assert problem.startswith("/stores/london/ (stores/london/index.html, from content/stores/london.yaml):")
    assert "span" in problem


def test_a_second_freeze_that_differs_is_named(tampered, tmp_path):
    site = tampered()
    (site.path / "users/ada-lovelace/index.html").write_text("another page")
    (site.path / "extra.txt").write_text("left over")
    problems = testing.freeze_differences(site, tmp_path / "again")
    assert problems[0] == "extra.txt: written by only one of two freezes"
    assert problems[1].startswith("/users/ada-lovelace/ (users/ada-lovelace/index.html, from "
                                  "content/users/ada-lovelace.yaml): two freezes wrote different bytes")


# ---------------------------------------------------------------- as a site owner runs them: pytest, no conftest


def run_site_tests(root: Path, *args: str) -> subprocess.CompletedProcess:
    """``python -m pytest`` in a site's folder holding the one-line opt-in and a pyproject.toml."""
    (root / "pyproject.toml").write_text('[tool.pytest.ini_options]\ntestpaths = ["tests"]\n')
    (root / "tests").mkdir()
    (root / "tests/test_site.py").write_text("from sitegen.testing import *  # noqa: F401,F403\n")
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))  # this engine
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
                          cwd=root, capture_output=True, text=True, timeout=300, env=env)


def test_one_line_turns_every_check_on_and_a_good_site_passes(tmp_path):
    root = copy_site(SITES / "example", tmp_path / "site")
    done = run_site_tests(root)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(testing.__all__)} passed" in done.stdout
    assert sorted(path.name for path in root.iterdir() if path.name != "__pycache__") == [
        "content", "pyproject.toml", "site.py", "static", "templates", "tests"]


def test_a_template_that_drops_a_field_fails_the_site_tests_naming_page_and_content_file(tmp_path):
    root = copy_site(SITES / "example", tmp_path / "site")
    edit(root / "templates/store.html", *DROP_PHONE)
    done = run_site_tests(root, "-k", "fields")
    assert done.returncode == 1, done.stdout + done.stderr
    assert ("/stores/tokyo/ (stores/tokyo/index.html, from content/stores/tokyo.yaml) does not show its "
            "field 'phone'") in done.stdout
    assert "Traceback" not in done.stdout


def test_a_link_to_a_missing_file_fails_the_site_tests_naming_page_and_content_file(tmp_path):
    """Told by the link check, or by the freeze itself where it refuses broken links: either way one
    line names the link, the page and the record's content file."""
    root = copy_site(SITES / "example", tmp_path / "site")
    edit(root / "templates/profile.html", *MISSING_PHOTO)
    done = run_site_tests(root, "-k", "link")
    assert done.returncode == 1, done.stdout + done.stderr
    assert [line for line in done.stdout.splitlines() if "/static/photos/sophie-wilson.jpg" in line
            and "/users/sophie-wilson/" in line and "content/users/sophie-wilson.yaml" in line], done.stdout
    assert "Traceback" not in done.stdout and "During handling" not in done.stdout


def test_a_record_route_that_is_not_a_page_needs_its_file_only(tmp_path):
    root = copy_site(SITES / "example", tmp_path / "site")
    with (root / "site.py").open("a") as site_py:
        site_py.write('\n\n@site.route("/users/<users:user>.json")\n'
                      'def user_json(user):\n    return {"name": user.name}\n')
    site = frozen(root, tmp_path / "build")
    user = next(iter(site.content.users.values()))
    assert (site.path / f"users/{user.slug}.json").is_file()
    assert site.page_of(user).url == f"/users/{user.slug}/"
    assert testing.missing_record_fields(site) == []
    assert testing.broken_links(site) == []
