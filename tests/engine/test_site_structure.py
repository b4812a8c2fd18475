"""A site declares its own structure: fields, pages, collections, references, Markdown, images.

Each recipe of the README is done here on a fixture site without touching
sitegen/, and each mistake in it is one line naming the file and line.
"""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest
from click.testing import CliRunner

from sitegen import builtin_pages
from sitegen.cli import main
from sitegen.freeze import freeze_site
from support import (EXAMPLE, REPO, SITES, check_random_edits_match_a_clean_freeze, copy_site, parse_html,
                     snapshot)
from test_freeze import page

SITEMAP = "{http://www.sitemaps.org/schemas/sitemap/0.9}"


def freeze_fails(root: Path) -> str:
    """Freeze ``root`` by the command line, expecting exit 1; its output, checked to be one line per problem."""
    result = CliRunner().invoke(main, ["--root", str(root), "freeze", "--jobs", "1"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    return result.output.strip()


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


@pytest.fixture(scope="module")
def events_build(tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("events") / "build"
    freeze_site(SITES / "events", dest)
    return dest


@pytest.fixture
def events(make_project) -> Path:
    return make_project("events")


# ---------------------------------------------------------------- a collection that references another

def test_each_event_page_shows_the_venue_it_references(events_build):
    for number, venue, name in [(1, "great-hall", "The Great Hall"), (5, "small-room", "The Small Room")]:
        soup = page(events_build, f"/events/talk-{number}/")
        link = soup.select_one("a.venue")
        assert (link["href"], link.get_text()) == (f"/venues/{venue}/", name)


def test_a_listing_paginates_with_previous_and_next_links(events_build):
    first, second, last = (page(events_build, path) for path in ("/events/", "/events/page/2/", "/events/page/3/"))
    assert [a.get_text() for a in first.select("ul.events a")] == ["Talk number 1", "Talk number 2"]
    assert first.select_one("a[rel=prev]") is None and first.select_one("a[rel=next]")["href"] == "/events/page/2/"
    assert second.select_one("a[rel=prev]")["href"] == "/events/"
    assert [a.get_text() for a in last.select("ul.events a")] == ["Talk number 5"]
    assert last.select_one("a[rel=next]") is None


def test_a_plain_page_is_in_the_nav_and_the_sitemap(events_build):
    home = page(events_build, "/")
    assert "/contact/" in {a["href"] for a in home.select("nav a")}
    assert (events_build / "contact/index.html").is_file()
    locs = {loc.text for loc in ElementTree.parse(events_build / "sitemap.xml").iter(f"{SITEMAP}loc")}
    assert "https://lectures.example.org/contact/" in locs


def test_the_sitemap_lists_every_html_page_but_the_404(events_build):
    locs = {loc.text for loc in ElementTree.parse(events_build / "sitemap.xml").iter(f"{SITEMAP}loc")}
    pages = {"https://lectures.example.org/" + p.relative_to(events_build).as_posix().removesuffix("index.html")
             for p in events_build.rglob("index.html")}
    assert locs == pages
    assert (events_build / "404.html").is_file()


@pytest.mark.parametrize("limit", [2, 5])  # parts that end inside the listing pages, inside a collection
def test_the_sitemap_becomes_an_index_past_its_limit(make_project, tmp_path, monkeypatch, limit):
    monkeypatch.setattr(builtin_pages, "SITEMAP_LIMIT", limit)
    dest = tmp_path / "build"
    freeze_site(make_project("events"), dest, jobs=1)
    index = ElementTree.parse(dest / "sitemap.xml").getroot()
    assert index.tag == f"{SITEMAP}sitemapindex"
    pages = {"https://lectures.example.org/" + p.relative_to(dest).as_posix().removesuffix("index.html")
             for p in dest.rglob("index.html")}
    numbers = range(1, -(-len(pages) // limit) + 1)
    parts = [loc.text for loc in index.iter(f"{SITEMAP}loc")]
    assert len(pages) == 13 and parts == [f"https://lectures.example.org/sitemaps/{n}.xml" for n in numbers]
    listed = [loc.text for n in numbers for loc in ElementTree.parse(dest / f"sitemaps/{n}.xml").iter(f"{SITEMAP}loc")]
    assert len(listed) == len(set(listed)) and set(listed) == pages


def test_markdown_is_rendered_once_with_links_that_follow_a_sub_path(make_project, tmp_path):
    dest = tmp_path / "build"
    freeze_site(make_project("events"), dest, base_url="https://example.org/sub/")
    summary = page(dest, "/events/talk-1/").select_one(".summary")
    assert summary.em.get_text() == "topic 1"
    assert summary.a["href"] == "/sub/venues/great-hall/"
    assert page(dest, "/venues/great-hall/").select_one(".about strong").get_text() == "Victorian"


def test_raw_html_in_markdown_is_escaped_unless_the_site_allows_it(events, tmp_path):
    edit(events / "content/events/talk-1.yaml", "An evening", "<script>alert(1)</script> An evening")
    freeze_site(events, tmp_path / "escaped")
    assert page(tmp_path / "escaped", "/events/talk-1/").select_one(".summary script") is None
    edit(events / "site.py", "site = Site(__file__)", "site = Site(__file__, raw_html=True)")
    freeze_site(events, tmp_path / "raw")
    assert page(tmp_path / "raw", "/events/talk-1/").select_one(".summary script") is not None


def test_the_preview_api_serves_the_collections_a_site_exposes(make_project):
    from sitegen.app import create_app
    from sitegen.content.loader import load_content
    from sitegen.site import load_site

    site = load_site(make_project("events"))
    app = create_app(site, load_content(site), live=True,
                     config={"TESTING": True, "SECRET_KEY": "k" * 32, "SITE_API_KEY": "key-0123456789abcdef"})
    client = app.test_client()
    event = client.get("/api/events/talk-1", headers={"X-API-Key": "key-0123456789abcdef"}).get_json()
    assert event["venue"] == "great-hall" and event["starts"] == "2026-01-11"
    assert client.get("/api/venues/", headers={"X-API-Key": "key-0123456789abcdef"}).status_code == 404


# ---------------------------------------------------------------- the README's recipes, and their mistakes

def test_recipe_add_a_field(make_project):
    root = make_project()
    edit(root / "site.py", "    bio: Markdown = Markdown()\n",
         "    bio: Markdown = Markdown()\n    website: str | None = None\n")
    edit(root / "templates/profile.html", "<h1>{{ user.name }}</h1>",
         '<h1>{{ user.name }}</h1>{% if user.website %}<a class="website" href="{{ user.website }}">web</a>{% endif %}')
    with open(root / "content/users/ada-lovelace.yaml", "a") as ada:
        ada.write("website: https://ada.example.org/\n")
    freeze_site(root, root / "build")
    assert page(root / "build", "/users/ada-lovelace/").select_one("a.website")["href"] == "https://ada.example.org/"

    with open(root / "content/users/alan-turing.yaml", "a") as alan:
        alan.write("webiste: https://alan.example.org/\n")
    assert freeze_fails(root).startswith(
        "content/users/alan-turing.yaml:7:1: unknown field 'webiste'; expected name, joined, awards, bio, website")


def test_recipe_add_a_photo(make_project):
    root = make_project()
    edit(root / "site.py", "from sitegen import Markdown,", "from sitegen import StaticFile, Markdown,")
    edit(root / "site.py", "    bio: Markdown = Markdown()\n", "    bio: Markdown = Markdown()\n    photo: StaticFile | None = None\n")
    edit(root / "templates/profile.html", "<h1>{{ user.name }}</h1>",
         "<h1>{{ user.name }}</h1>{% if user.photo %}<img class=\"photo\" "
         "src=\"{{ url_for('static', filename=user.photo) }}\" alt=\"\">{% endif %}")
    with open(root / "content/users/ada-lovelace.yaml", "a") as ada:
        ada.write("photo: images/logo.svg\n")
    freeze_site(root, root / "build")
    assert page(root / "build", "/users/ada-lovelace/").select_one("img.photo")["src"] == "/static/images/logo.svg"

    edit(root / "content/users/ada-lovelace.yaml", "images/logo.svg", "images/ada.jpg")
    assert freeze_fails(root) == ("content/users/ada-lovelace.yaml:7:8: no file static/images/ada.jpg "
                                  "(a path under static/, such as images/photo.jpg)")
    edit(root / "content/users/ada-lovelace.yaml", "images/ada.jpg", "/images/logo.svg")
    assert freeze_fails(root) == ("content/users/ada-lovelace.yaml:7:8: '/images/logo.svg' is not a path under "
                                  "static/: write it as images/photo.jpg, without a leading / or ..")


def test_recipe_add_a_page_to_the_nav(make_project):
    root = make_project()
    with open(root / "site.py", "a") as site:
        site.write('\n\n@site.route("/contact/")\ndef contact():\n    return render_template("contact.html")\n')
    (root / "templates/contact.html").write_text(
        '{% extends "base.html" %}{% block main %}<h1>Contact</h1>{% endblock %}')
    edit(root / "content/site.yaml", "  - {label: About, page: about}", "  - {label: About, page: about}\n"
                                                                      "  - {label: Contact, page: contact}")
    freeze_site(root, root / "build")
    assert "/contact/" in {a["href"] for a in page(root / "build", "/").select("nav a")}
    assert "https://wordsmiths.example.org/contact/" in (root / "build/sitemap.xml").read_text()

    edit(root / "content/site.yaml", "page: contact", "page: contakt")
    assert freeze_fails(root).startswith("content/site.yaml:21:28: unknown page 'contakt'; expected one of home,")


def test_recipe_a_collection_that_references_another_refuses_an_unknown_record(events):
    edit(events / "content/events/talk-2.yaml", "venue: great-hall", "venue: nowhere")
    assert freeze_fails(events) == "content/events/talk-2.yaml:3:8: no venue 'nowhere' in content/venues/"


def test_deleting_a_referenced_record_names_the_records_that_refer_to_it(events):
    freeze_site(events, events / "build")
    before = snapshot(events / "build")
    (events / "content/venues/small-room.yaml").unlink()
    assert freeze_fails(events).splitlines() == [
        "content/events/talk-4.yaml:3:8: no venue 'small-room' in content/venues/",
        "content/events/talk-5.yaml:3:8: no venue 'small-room' in content/venues/"]
    assert snapshot(events / "build") == before


def test_a_broken_link_in_content_names_the_file_and_line_and_keeps_the_build(events):
    freeze_site(events, events / "build")
    before = snapshot(events / "build")
    edit(events / "content/events/talk-3.yaml", "(/venues/great-hall/)", "(/venues/grand-hall/)")
    assert freeze_fails(events) == ("content/events/talk-3.yaml:5: link /venues/grand-hall/ on page "
                                    "/events/talk-3/ leads to no page or file of the site")
    assert snapshot(events / "build") == before


def test_a_page_gone_that_an_unchanged_page_links_to_is_a_broken_link(events):
    edit(events / "content/events/talk-1.yaml", "(/venues/great-hall/)", "(/events/talk-2/)")
    freeze_site(events, events / "build")
    before = snapshot(events / "build")
    (events / "content/events/talk-2.yaml").unlink()
    assert freeze_fails(events) == ("content/events/talk-1.yaml:5: link /events/talk-2/ on page /events/talk-1/ "
                                    "leads to no page or file of the site")
    assert snapshot(events / "build") == before


def test_a_link_outside_a_sub_path_base_url_is_refused(events):
    result = CliRunner().invoke(main, ["--root", str(events), "freeze", "--base-url", "https://example.org/sub/"])
    assert result.exit_code == 0, result.output  # links made with url_for and in Markdown follow the base URL
    edit(events / "templates/contact.html", "<h1>Contact</h1>", '<h1>Contact</h1><a href="/events/">All</a>')
    result = CliRunner().invoke(main, ["--root", str(events), "freeze", "--base-url", "https://example.org/sub/"])
    assert result.exit_code == 1
    assert result.output.strip() == ("templates/contact.html:4: link /events/ on page /contact/ leads out of "
                                     "the site's base path /sub/")


def test_a_missing_asset_is_a_broken_link(events):
    edit(events / "templates/base.html", "filename='style.css'", "filename='styles.css'")
    assert "link /static/styles.css on page / leads to no page or file of the site" in freeze_fails(events)


def test_a_route_freeze_cannot_list_is_an_error_naming_it(events):
    with open(events / "site.py", "a") as site:
        site.write('\n\n@site.route("/tags/<tag>/")\ndef tag_page(tag):\n    return tag\n')
    line = len((events / "site.py").read_text().splitlines()) - 2  # the decorator's line
    assert freeze_fails(events) == (
        f"site.py:{line}: route '/tags/<tag>/' (tag_page): freeze cannot list its URLs; give it exactly one "
        "parameter typed with a collection, as in <events:event> (for a page per tag, declare the tags as a "
        "collection)")


def test_a_mistake_in_site_py_is_one_line_naming_its_line(events):
    edit(events / "site.py", "    tags: list[str] = []\n", "    tags: list[str] = []\n    poster: Poster | None = None\n")
    assert freeze_fails(events) == "site.py:30: NameError: name 'Poster' is not defined"


def test_a_reference_to_a_class_that_is_no_collection_is_an_error(events):
    edit(events / "site.py", '@site.collection("venues", listing="/venues/")\n', "")
    assert "Event.venue refers to Venue, which is not declared as a collection" in freeze_fails(events)


def test_running_outside_the_virtual_environment_says_what_to_install():
    done = subprocess.run([sys.executable, "-S", str(REPO / "site.py"), "freeze"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1
    assert done.stderr.startswith("error: ") and "pip install -e ." in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------- incremental freezes of another site

def test_renaming_a_venue_renders_the_pages_that_show_it(events, tmp_path):
    freeze_site(events, events / "build")
    edit(events / "content/venues/small-room.yaml", "The Small Room", "The Snug")
    result = freeze_site(events, events / "build")
    # the venue's page, the venues listing, the two events held there, and the other venue's page,
    # whose view looked at the venue of every event to pick its own
    assert result.rendered == 5
    assert snapshot(events / "build") == snapshot_of_clean(events, tmp_path / "clean")


def snapshot_of_clean(root: Path, dest: Path) -> dict[str, bytes]:
    freeze_site(root, dest, jobs=1, clean=True)
    return snapshot(dest)


def _edit_event(root: Path, rng: random.Random) -> None:
    path = rng.choice(sorted((root / "content/events").glob("*.yaml")))
    lines = [line for line in path.read_text().splitlines() if not line.startswith("title:")]
    path.write_text("\n".join(lines + [f"title: Talk {rng.randint(0, 999)}"]) + "\n")


def _move_event(root: Path, rng: random.Random) -> None:
    path = rng.choice(sorted((root / "content/events").glob("*.yaml")))
    venues = [p.stem for p in (root / "content/venues").glob("*.yaml")]
    text = "\n".join(line for line in path.read_text().splitlines() if not line.startswith("venue:"))
    path.write_text(text + f"\nvenue: {rng.choice(venues)}\n")


def _add_event(root: Path, rng: random.Random) -> None:
    number = rng.randint(10, 999)
    venue = rng.choice(sorted((root / "content/venues").glob("*.yaml"))).stem
    (root / f"content/events/extra-{number}.yaml").write_text(
        f"title: Extra {number}\nstarts: 2027-01-0{rng.randint(1, 9)}\nvenue: {venue}\n")


def _delete_event(root: Path, rng: random.Random) -> None:
    events = sorted((root / "content/events").glob("*.yaml"))
    if len(events) > 1:
        rng.choice(events).unlink()


def _add_venue(root: Path, rng: random.Random) -> None:
    number = rng.randint(10, 999)
    (root / f"content/venues/room-{number}.yaml").write_text(f"name: Room {number}\ncity: Hull\n")


def _rename_venue(root: Path, rng: random.Random) -> None:
    path = rng.choice(sorted((root / "content/venues").glob("*.yaml")))
    lines = [line for line in path.read_text().splitlines() if not line.startswith("name:")]
    path.write_text("\n".join(lines + [f"name: Hall {rng.randint(0, 999)}"]) + "\n")


def _edit_template(root: Path, rng: random.Random) -> None:
    path = root / "templates" / rng.choice(["event.html", "events.html", "venue.html"])
    text = path.read_text()
    path.write_text(text.replace("<h1>", "<h1 class=\"t\">", 1) if "<h1>" in text else text.replace(
        "<h1 class=\"t\">", "<h1>", 1))


EVENT_EDITS = [_edit_event, _move_event, _add_event, _delete_event, _add_venue, _rename_venue, _edit_template]


@pytest.mark.parametrize("seed", [1, 2])
def test_random_edits_of_another_site_keep_every_incremental_build_identical_to_a_clean_one(events, tmp_path, seed):
    check_random_edits_match_a_clean_freeze(events, tmp_path, EVENT_EDITS, seed=seed, steps=5)


def test_a_copy_of_the_example_site_freezes_without_engine_changes(tmp_path):
    root = copy_site(EXAMPLE, tmp_path / "copy")
    assert freeze_site(root, root / "build").pages > 0
    assert parse_html((root / "build/index.html").read_bytes()).h1.get_text() == "Wordsmiths"


def test_a_list_of_references_resolves_each_and_refuses_an_unknown_one(events, tmp_path):
    edit(events / "site.py", "    tags: list[str] = []\n", "    tags: list[str] = []\n    also_at: list[Venue] = []\n")
    edit(events / "templates/event.html", "<ul class=\"tags\">",
         "<ul class=\"also\">{% for venue in event.also_at %}<li>{{ venue.name }}</li>{% endfor %}</ul><ul class=\"tags\">")
    with open(events / "content/events/talk-1.yaml", "a") as talk:
        talk.write("also_at: [small-room, great-hall]\n")
    freeze_site(events, tmp_path / "build")
    assert [li.get_text() for li in page(tmp_path / "build", "/events/talk-1/").select(".also li")] == \
        ["The Small Room", "The Great Hall"]
    edit(events / "content/events/talk-1.yaml", "[small-room, great-hall]", "[small-room, nowhere]")
    assert freeze_fails(events) == "content/events/talk-1.yaml:7:23: no venue 'nowhere' in content/venues/"
