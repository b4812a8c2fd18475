"""Incremental and parallel freezing: only what changed is rendered, and the result is always a clean build."""

from __future__ import annotations

import fcntl
import marshal
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from support import REPO, Crash, check_random_edits_match_a_clean_freeze, snapshot
from sitegen.freeze import incremental, render
from sitegen.cli import main
from sitegen.errors import SiteError
from sitegen.freeze import freeze_site
from sitegen.freeze.build import MARKER, dirty_slugs, edited_records, forget_fields_of_unknown_versions
from sitegen.freeze.incremental import UNKNOWN_FIELDS

USER = "name: {name}\njoined: 20{year:02d}-0{month}-1{day}\nbio: {bio}\n"
STORE = "city: {city}\nname: {name}\naddress: |-\n  {number} Main Street\nhours:\n  Every day: \"9-5\"\nphone: +1 555 {number}\n"


def add_users(root: Path, count: int) -> None:
    for number in range(count):
        slug = f"member-{number:03d}"
        (root / "content" / "users" / f"{slug}.yaml").write_text(
            USER.format(slug=slug, name=f"Member {number}", year=number % 20, month=1 + number % 9,
                        day=number % 10, bio=f"Bio {number}."))


@pytest.fixture
def project(make_project):
    root = make_project()
    add_users(root, 40)
    return root


def clean_copy(root: Path, tmp_path: Path, name: str) -> dict[str, bytes]:
    dest = tmp_path / "clean" / name / "build"
    freeze_site(root, dest, jobs=1, clean=True)
    return snapshot(dest)


def test_nothing_changed_renders_nothing(project):
    first = freeze_site(project, project / "build")
    again = freeze_site(project, project / "build")
    assert first.rendered == first.pages == 74  # 53 users on 3 listing pages
    assert (again.pages, again.rendered, again.removed) == (74, 0, 0)


def test_a_bio_edit_renders_only_that_profile(project, tmp_path):
    freeze_site(project, project / "build")
    path = project / "content/users/member-007.yaml"
    path.write_text(path.read_text().replace("Bio 7.", "A new bio."))
    result = freeze_site(project, project / "build")
    assert result.rendered == 1
    assert snapshot(project / "build") == clean_copy(project, tmp_path, "bio")


def test_an_edit_plans_the_pages_again_only_when_the_plan_can_change(project, tmp_path, monkeypatch):
    made = []
    plan_pages = render._plan_pages
    monkeypatch.setattr(render, "_plan_pages", lambda *args: made.append(1) or plan_pages(*args))

    def freeze(edit) -> int:
        edit()
        made.clear()
        freeze_site(project, project / "build")
        return len(made)

    user, settings = project / "content/users/member-007.yaml", project / "content/site.yaml"
    assert freeze(lambda: None) == 1
    assert freeze(lambda: user.write_text(user.read_text().replace("Member 7", "Renamed"))) == 0
    assert freeze(lambda: (project / "static/extra.txt").write_text("more")) == 1
    assert freeze(lambda: settings.write_text(settings.read_text().replace("Wordsmiths", "Wordsmith"))) == 1
    assert freeze(lambda: add_users(project, 41)) == 1  # a record more: a listing page more, maybe
    assert freeze(lambda: (project / "static/extra.txt").unlink()) == 1
    assert snapshot(project / "build") == clean_copy(project, tmp_path, "plans")


def test_an_edit_of_the_same_size_with_its_time_set_back_is_frozen(project, monkeypatch):
    """tar, `rsync -t` or `touch -d` can put an older modification time on new bytes; not a change time."""
    monkeypatch.setattr(incremental, "RACY_NS", 0)  # trust every entry at once, however recent
    freeze_site(project, project / "build")
    member = project / "content/users/member-003.yaml"
    before = member.stat()
    member.write_text(member.read_text().replace("Bio 3.", "Bio X."))
    os.utime(member, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (member.stat().st_size, member.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert freeze_site(project, project / "build").rendered == 1
    assert "Bio X." in (project / "build/users/member-003/index.html").read_text()


def test_a_name_edit_also_renders_the_one_listing_page_that_shows_the_name(project, tmp_path):
    freeze_site(project, project / "build")
    path = project / "content/users/member-007.yaml"
    path.write_text(path.read_text().replace("Member 7", "Renamed Seven"))
    result = freeze_site(project, project / "build")
    assert result.rendered == 2  # the profile and /users/ (page 1 of 3); the home page shows others
    assert snapshot(project / "build") == clean_copy(project, tmp_path, "name")


def test_a_name_edit_of_a_record_on_the_home_page_renders_it_too(project, tmp_path):
    freeze_site(project, project / "build")
    path = project / "content/users/ada-lovelace.yaml"
    path.write_text(path.read_text().replace("Ada Lovelace", "Augusta Ada King"))
    assert freeze_site(project, project / "build").rendered == 3  # the profile, /users/ and the home page
    assert snapshot(project / "build") == clean_copy(project, tmp_path, "home")


def test_an_included_template_edit_renders_only_the_pages_that_include_it(project):
    freeze_site(project, project / "build")
    card = project / "templates/_user_card.html"
    card.write_text(card.read_text().replace('class="card"', 'class="card person"'))
    assert freeze_site(project, project / "build").rendered == 4  # the 3 pages of /users/ and the home page


def test_an_optional_include_is_picked_up_when_it_appears(project, tmp_path):
    about = project / "templates/about.html"
    about.write_text(about.read_text().replace(
        "{% block main %}", '{% block main %}{% include "_notice.html" ignore missing %}'))
    freeze_site(project, project / "build")
    (project / "templates/_notice.html").write_text('<p class="notice">Closed on Monday.</p>\n')
    assert freeze_site(project, project / "build").rendered == 1
    assert snapshot(project / "build") == clean_copy(project, tmp_path, "notice")


def test_a_stylesheet_edit_copies_only_the_stylesheet(project):
    freeze_site(project, project / "build")
    with open(project / "static/styles/site.css", "a") as css:
        css.write("\n.person { color: inherit; }\n")
    assert freeze_site(project, project / "build").rendered == 1
    assert (project / "build/static/styles/site.css").read_bytes() == \
        (project / "static/styles/site.css").read_bytes()


def test_a_deleted_record_removes_its_page(project):
    freeze_site(project, project / "build")
    (project / "content/users/member-007.yaml").unlink()
    result = freeze_site(project, project / "build")
    assert result.removed == 1
    assert not (project / "build/users/member-007").exists()
    assert result.pages == 73


def test_clean_flag_renders_every_page(project):
    freeze_site(project, project / "build")
    result = CliRunner().invoke(main, ["--root", str(project), "freeze", "--clean", "--jobs", "2"])
    assert result.exit_code == 0, result.output
    assert "(74 rendered, 0 removed)" in result.output


def show_on_profiles(root: Path, argument: str, markup: str) -> None:
    """Have the profile view pass ``argument`` (``name=expression``) and its template show ``markup``
    after the name."""
    site_file, call = root / "site.py", 'return render_template("profile.html", '
    site_file.write_text(site_file.read_text().replace(call + "user=user,", f"{call}{argument}, user=user,"))
    profile = root / "templates/profile.html"
    profile.write_text(profile.read_text().replace("<h1>{{ user.name }}</h1>", "<h1>{{ user.name }}</h1>" + markup))


def test_a_record_page_that_counts_every_record_follows_additions(project, tmp_path):
    from test_freeze import page

    show_on_profiles(project, 'people=len(site.records("users"))', '<p class="count">{{ people }} people</p>')
    freeze_site(project, project / "build", jobs=2)  # the workers hold a share each: profiles wait for all
    add_users(project, 41)
    freeze_site(project, project / "build")
    assert page(project / "build", "/users/ada-lovelace/").select_one(".count").get_text() == "54 people"
    assert snapshot(project / "build") == clean_copy(project, tmp_path, "count")


def test_parallel_and_sequential_freezes_are_byte_identical(project, tmp_path):
    parallel, sequential = tmp_path / "parallel", tmp_path / "sequential"
    freeze_site(project, parallel, jobs=2, clean=True)
    freeze_site(project, sequential, jobs=1, clean=True)
    assert snapshot(parallel) == snapshot(sequential)


def test_workers_that_send_their_parse_in_parts_keep_every_record_in_its_place(project, tmp_path, monkeypatch):
    monkeypatch.setattr(render, "PARSE_PART", 7)  # each worker's parse reaches the parent in several parts
    in_parts, whole = tmp_path / "parts", tmp_path / "whole"
    freeze_site(project, in_parts, jobs=2, clean=True)
    freeze_site(project, whole, jobs=1, clean=True)
    assert snapshot(in_parts) == snapshot(whole)
    member = project / "content/users/member-033.yaml"
    member.write_text(member.read_text().replace("Bio 33.", "Another bio."))
    assert freeze_site(project, in_parts, jobs=2).rendered == 1  # its digests were kept as its own
    for number in (2, 37):
        (project / f"content/users/member-{number:03d}.yaml").write_text("name: [\n")
    with pytest.raises(SiteError) as caught:
        freeze_site(project, tmp_path / "broken", jobs=2, clean=True)
    assert [line.split(":")[0] for line in caught.value.format_message().splitlines()] == [
        "content/users/member-002.yaml", "content/users/member-037.yaml"]


def test_record_pages_that_show_records_of_another_worker_are_the_same_as_in_one_process(project, tmp_path):
    from test_freeze import page

    show_on_profiles(project, 'first=site.records("users").first(2)',
                     '<p class="first">{% for other in first %}{{ other.name }};{% endfor %}</p>')
    parallel, sequential = tmp_path / "parallel", tmp_path / "sequential"
    freeze_site(project, parallel, jobs=2, clean=True)  # the second worker holds neither of the first two
    freeze_site(project, sequential, jobs=1, clean=True)
    assert page(parallel, "/users/member-039/").select_one(".first").get_text() == "Ada Lovelace;Alan Turing;"
    assert snapshot(parallel) == snapshot(sequential)


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda root: (root / "content/users/member-039.yaml").write_text("name: [\n"),
         "content/users/member-039.yaml:2:1: invalid YAML"),
        (lambda root: (root / "templates/users.html").write_text(
            '{% extends "base.html" %}\n{% block main %}\n{{ nickname }}\n{% endblock %}\n'),
         "templates/users.html:3: 'nickname' is undefined (while freezing /users/)"),
    ],
    ids=["record-parsed-by-a-worker", "listing-page-beside-the-record-pages"],
)
def test_a_failure_in_any_worker_stops_the_freeze_and_keeps_the_last_build(project, breakage, message):
    freeze_site(project, project / "build", jobs=2)
    before = snapshot(project / "build")
    breakage(project)
    with pytest.raises(SiteError) as caught:
        freeze_site(project, project / "build", jobs=2, clean=True)
    assert message in caught.value.format_message()
    assert snapshot(project / "build") == before


def test_state_lives_beside_the_build_not_in_it(project):
    freeze_site(project, project / "build")
    assert (project / ".build.state" / incremental.STATE_FILE).is_file()
    assert {p.name for p in (project / "build").iterdir() if p.name.startswith(".")} == {MARKER}


def test_a_static_file_that_becomes_a_folder_and_back_freezes_as_a_clean_build_does(project, tmp_path):
    vendor = project / "static" / "vendor"
    vendor.write_text("one file")
    freeze_site(project, project / "build")
    vendor.unlink()
    vendor.mkdir()
    (vendor / "lib.js").write_text("a file in a folder")
    freeze_site(project, project / "build")
    assert snapshot(project / "build") == clean_copy(project, tmp_path, "folder")
    (vendor / "lib.js").unlink()
    vendor.rmdir()
    vendor.write_text("one file again")
    freeze_site(project, project / "build")
    assert snapshot(project / "build") == clean_copy(project, tmp_path, "file")


@pytest.mark.parametrize("damage", ["truncated", "overwritten"])
def test_a_state_damaged_past_its_head_renders_everything_as_if_there_were_none(project, tmp_path, damage):
    freeze_site(project, project / "build")
    state = project / ".build.state" / incremental.STATE_FILE
    data = state.read_bytes()
    rest = incremental.HEAD_LENGTH_BYTES + int.from_bytes(data[:incremental.HEAD_LENGTH_BYTES], "little")
    state.write_bytes(data[:rest + 20] if damage == "truncated" else data[:rest + 5] + b"\xff" * 64 + data[rest + 69:])
    path = project / "content/users/member-007.yaml"
    path.write_text(path.read_text().replace("Bio 7.", "A new bio."))
    result = freeze_site(project, project / "build")
    assert result.rendered == result.pages == 74
    assert snapshot(project / "build") == clean_copy(project, tmp_path, damage)
    assert freeze_site(project, project / "build").rendered == 0  # and the state is whole again


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_first_freeze_records_every_source_as_it_was_read(project, jobs, monkeypatch):
    # Settled files (older than the racy window, here any) are stored with their stat and digest,
    # so the next freeze stats them and hashes nothing.
    monkeypatch.setattr(incremental, "RACY_NS", 0)
    freeze_site(project, project / "build", jobs=jobs)
    state = incremental.BuildFolders(project / "build").load_state(incremental.fingerprint(project, None))
    for name in ("content/site.yaml", "content/users/member-007.yaml", "templates/base.html"):
        data = (project / name).read_bytes()
        changed = (project / name).stat().st_ctime_ns
        assert state.sources[name] == (changed, len(data), incremental.digest(data)), name
    hashed = []
    monkeypatch.setattr(incremental, "file_digest", lambda path: hashed.append(path))
    assert freeze_site(project, project / "build").rendered == 0
    assert hashed == []


def test_a_second_freeze_into_the_same_folder_is_refused_while_one_runs(project):
    freeze_site(project, project / "build")
    before = snapshot(project / "build")
    (project / "content/users/member-007.yaml").write_text(USER.format(
        slug="member-007", name="Changed", year=1, month=1, day=1, bio="Changed."))
    with open(project / ".build.state" / incremental.LOCK_FILE, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # as a freeze that is running holds it
        with pytest.raises(SiteError, match="another freeze into .*build is running"):
            freeze_site(project, project / "build")
        assert not (project / ".build.state" / "next").exists()
        assert snapshot(project / "build") == before
    assert freeze_site(project, project / "build").rendered == 2


def test_nothing_changed_imports_neither_flask_nor_pydantic(project):
    freeze_site(project, project / "build")
    script = ("import sys; from pathlib import Path; from sitegen.freeze import freeze_site; "
              f"r = freeze_site(Path({str(project)!r}), Path({str(project / 'build')!r})); "
              "print(r.rendered, 'flask' in sys.modules, 'pydantic' in sys.modules, 'markdown_it' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert done.stdout.split() == ["0", "False", "False", "False"], done.stderr


def test_a_crash_while_applying_a_commit_is_finished_by_the_next_freeze(project, tmp_path, monkeypatch):
    freeze_site(project, project / "build")
    for number in range(5):
        path = project / f"content/users/member-{number:03d}.yaml"
        path.write_text(path.read_text().replace(f"Bio {number}.", "Changed."))
    real_replace, moves = os.replace, []

    def crash_on_third_move(source, target):
        moves.append(target)
        if len(moves) == 3:
            raise Crash("power cut")
        real_replace(source, target)

    monkeypatch.setattr(incremental.os, "replace", crash_on_third_move)
    with pytest.raises(Crash):
        freeze_site(project, project / "build")
    monkeypatch.setattr(incremental.os, "replace", real_replace)
    assert (project / ".build.state" / "next" / incremental.COMMIT_FILE).is_file()
    result = freeze_site(project, project / "build")
    assert result.rendered == 0  # the interrupted commit held every change
    assert not (project / ".build.state" / "next").exists()
    assert snapshot(project / "build") == clean_copy(project, tmp_path, "crash")


def test_a_crash_before_the_commit_leaves_build_and_state_alone(project, monkeypatch):
    freeze_site(project, project / "build")
    before, state = snapshot(project / "build"), snapshot(project / ".build.state")
    (project / "content/users/member-001.yaml").write_text(USER.format(
        slug="member-001", name="X", year=1, month=1, day=1, bio="Y"))
    monkeypatch.setattr(incremental.BuildFolders, "mark_ready", lambda *args: sys.exit("killed"))
    with pytest.raises(SystemExit):
        freeze_site(project, project / "build")
    assert snapshot(project / "build") == before
    assert snapshot(project / ".build.state") == state
    assert not (project / ".build.state" / "next").exists()


# ---------------------------------------------------------------- random edits

def _edit_user(root: Path, rng: random.Random) -> None:
    users = sorted((root / "content/users").glob("*.yaml"))
    path = rng.choice(users)
    text = path.read_text()
    field = rng.choice(["bio", "name", "joined"])
    lines = [line for line in text.splitlines() if not line.startswith(f"{field}:")]
    value = {"bio": f"Edited {rng.random():.6f}", "name": f"Name {rng.randint(0, 9999)}",
             "joined": f"19{rng.randint(10, 99)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}"}[field]
    path.write_text("\n".join(lines + [f"{field}: {value}"]) + "\n")


def _add_user(root: Path, rng: random.Random) -> None:
    slug = f"new-{rng.randint(0, 10**6)}"
    (root / "content/users" / f"{slug}.yaml").write_text(
        USER.format(slug=slug, name=f"New {slug}", year=rng.randint(0, 20), month=1, day=2, bio="Hello."))


def _delete_user(root: Path, rng: random.Random) -> None:
    rng.choice(sorted((root / "content/users").glob("*.yaml"))).unlink()


def _edit_store(root: Path, rng: random.Random) -> None:
    path = rng.choice(sorted((root / "content/stores").glob("*.yaml")))
    text = path.read_text()
    path.write_text(text.replace("name: ", f"name: {rng.choice('ABC')}", 1))


def _add_store(root: Path, rng: random.Random) -> None:
    number = rng.randint(100, 999)
    (root / "content/stores" / f"town-{number}.yaml").write_text(
        STORE.format(city=f"Town {number}", name=f"Shop {number}", number=number))


def _delete_store(root: Path, rng: random.Random) -> None:
    stores = sorted((root / "content/stores").glob("*.yaml"))
    if len(stores) > 1:
        rng.choice(stores).unlink()


def _edit_template(root: Path, rng: random.Random) -> None:
    name, old, new = rng.choice([
        ("profile.html", "<h1>{{ user.name }}</h1>", "<h1>{{ user.name }} </h1>"),
        ("_user_card.html", "joined {{ user.joined.year }}", "since {{ user.joined.year }}"),
        ("base.html", "<footer class=\"site-footer\">", "<footer class=\"site-footer\" id=\"foot\">"),
        ("store.html", "Opening hours", "Hours"),
    ])
    path = root / "templates" / name
    text = path.read_text()
    path.write_text(text.replace(old, new) if old in text else text.replace(new, old))


def _edit_stylesheet(root: Path, rng: random.Random) -> None:
    with open(root / "static/styles/site.css", "a") as css:
        css.write(f"\n.x{rng.randint(0, 999)} {{ color: red; }}\n")


def _add_or_remove_static_file(root: Path, rng: random.Random) -> None:
    path = root / "static" / f"extra-{rng.randint(0, 2)}.txt"
    if path.exists():
        path.unlink()
    else:
        path.write_text("extra")


def _edit_settings(root: Path, rng: random.Random) -> None:
    path = root / "content/site.yaml"
    path.write_text(re.sub(r"(?m)^tagline: .*$", f"tagline: Words, take {rng.randint(0, 99)}.", path.read_text()))


EDITS = [_edit_user, _add_user, _delete_user, _edit_store, _add_store, _delete_store,
         _edit_template, _edit_stylesheet, _add_or_remove_static_file, _edit_settings]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_edits_keep_every_incremental_build_identical_to_a_clean_one(project, tmp_path, seed):
    check_random_edits_match_a_clean_freeze(project, tmp_path, EDITS, seed=seed, steps=6)


def test_the_fingerprint_follows_engine_code_site_code_and_libraries(project, tmp_path, monkeypatch):
    engine = tmp_path / "engine"
    (engine / "freeze").mkdir(parents=True)
    (engine / "templates").mkdir()
    (engine / "__pycache__").mkdir()
    for name in ("freeze/incremental.py", "templates/404.html", "__pycache__/x.pyc"):
        (engine / name).write_text("one")
    library = tmp_path / "libraries" / "fake_library.py"
    library.parent.mkdir()
    library.write_text("")
    monkeypatch.setattr(incremental, "__file__", str(engine / "freeze/incremental.py"))
    monkeypatch.setattr(incremental, "LIBRARIES", ("fake_library",))
    monkeypatch.syspath_prepend(str(library.parent))
    seen = {incremental.fingerprint(project, None)}
    (engine / "__pycache__/x.pyc").write_text("compiled")  # not code
    assert incremental.fingerprint(project, None) in seen
    for change in (lambda: (engine / "templates/404.html").write_text("two"),
                   lambda: (engine / "freeze/incremental.py").write_text("two"),
                   lambda: (project / "site.py").write_text((project / "site.py").read_text() + "\n# more\n"),
                   lambda: (project / "helpers.py").write_text(""),
                   lambda: library.write_text("__version__ = 2\n")):
        change()
        fingerprint = incremental.fingerprint(project, None)
        assert fingerprint not in seen
        seen.add(fingerprint)


def test_the_records_to_render_are_the_new_the_edited_and_those_whose_pages_read_a_change():
    names = ["ada", "alan", "barbara", "donald", "edsger"]
    owned = {"ada", "alan", "barbara", "donald"}  # edsger is new: no page yet
    dirty_owners = {("users", "alan"), ("stores", "donald")}  # a page of alan's read something changed
    changed = {"content/users/barbara.yaml", "content/stores/donald.yaml", "content/site.yaml",
               "templates/profile.html", "users:ada.name", "content/users/nobody.yaml"}
    assert dirty_slugs("users", names, owned, dirty_owners | edited_records(changed)) == {"edsger", "alan", "barbara"}


def test_a_record_read_in_two_versions_during_a_freeze_keeps_no_field_digests():
    unknown = (-1, -1, b"")
    sources = {"content/users/ada.yaml": unknown, "content/users/alan.yaml": (5, 10, b"digest"),
               "templates/profile.html": unknown, "content/site.yaml": unknown}
    records = {"users": {"ada": b"fields-a", "alan": b"fields-b"}, "stores": {"ada": b"fields-c"}}
    forget_fields_of_unknown_versions(sources, records)
    assert records == {"users": {"ada": UNKNOWN_FIELDS, "alan": b"fields-b"}, "stores": {"ada": b"fields-c"}}


def test_the_scan_against_the_state_tells_touched_edited_added_removed_and_unknown_files_apart(tmp_path):
    (tmp_path / "templates").mkdir()
    for name, text in [("same", "same"), ("touched", "touched"), ("edited", "new"), ("added", "added"),
                       ("unknown", "unknown")]:
        (tmp_path / "templates" / f"{name}.html").write_text(text)
    old = 1_000  # ns: long settled
    previous = {"templates/same.html": (old, 4, incremental.digest(b"same")),
                "templates/touched.html": (old, 7, incremental.digest(b"touched")),
                "templates/edited.html": (old, 3, incremental.digest(b"old")),
                "templates/gone.html": (old, 4, incremental.digest(b"gone")),
                "templates/unknown.html": (-1, 7, incremental.digest(b"unknown"))}  # saved just before a freeze
    scanned = {"templates/same.html": (old, 4), "templates/touched.html": (2_000, 7),
               "templates/edited.html": (2_000, 3), "templates/added.html": (2_000, 5),
               "templates/unknown.html": (old, 7)}

    changes = incremental.compare_sources(tmp_path, scanned, previous, hash_content=True)

    assert changes.changed == {"templates/edited.html", "templates/added.html", "templates/gone.html"}
    assert (changes.added, changes.removed) == ({"templates/added.html"}, {"templates/gone.html"})
    assert changes.sources["templates/same.html"] is previous["templates/same.html"]
    assert changes.sources["templates/touched.html"] == (2_000, 7, incremental.digest(b"touched"))
    assert changes.sources["templates/unknown.html"] == (old, 7, incremental.digest(b"unknown"))
    assert changes.sources.keys() == scanned.keys()

    scanned["templates/gone.html"] = (old, 4)  # back: nothing is removed
    assert incremental.compare_sources(tmp_path, scanned, previous, hash_content=True).removed == set()


def test_a_watching_freeze_compares_only_the_noted_sources_and_finds_what_a_whole_compare_does(
        project, tmp_path, monkeypatch):
    """The watcher's kept scan and state (sitegen/freeze/kept.py): once a freeze has statted every
    source and committed (or found nothing to do), the next looks only at the paths file events named
    since (and entries too recent to trust); a failed freeze lets the kept state go, and the next
    compares every source. Every comparison equals the whole one, and every build a clean freeze."""
    from sitegen.freeze.kept import KeptScan, KeptState

    scan = KeptScan()
    kept = KeptState(scan)
    whole_compare = incremental.compare_sources
    partial = []

    now_cutoff = incremental.racy_cutoff

    def both_ways(root, scanned, previous, *, hash_content, moved=None):
        cutoff = now_cutoff()  # one moment for both: a file at the edge of too recent is judged alike
        monkeypatch.setattr(incremental, "racy_cutoff", lambda: cutoff)
        whole = whole_compare(root, scanned, previous, hash_content=hash_content)
        if hash_content:  # not a first or clean freeze
            partial.append(moved and set(moved))
        if moved is None:
            monkeypatch.setattr(incremental, "racy_cutoff", now_cutoff)
            return whole
        found = whole_compare(root, scanned, previous, hash_content=hash_content, moved=moved)
        monkeypatch.setattr(incremental, "racy_cutoff", now_cutoff)
        assert (found.sources, found.changed, found.added, found.removed) == (
            whole.sources, whole.changed, whole.added, whole.removed)
        return found

    monkeypatch.setattr(incremental, "compare_sources", both_ways)
    monkeypatch.setattr(incremental, "RACY_NS", 300_000_000)  # files saved 0.3 s before a freeze are trusted

    def sources() -> dict[str, tuple[int, int]]:
        return {path: stat for path, stat in incremental.scan_sources(project, ["users", "stores"]).items()}

    def freeze() -> None:
        freeze_site(project, project / "build", jobs=2, scan=scan, folders=kept.folders)

    freeze()
    freeze()  # nothing changed: the state now agrees with a scan of every source
    rng = random.Random(7)
    for step in range(8):
        if step in (5, 7):  # the entries of files saved just before the last freeze are now old enough
            time.sleep(0.35)
        before = sources()
        broken = step in (2, 3)
        for edit in rng.sample(EDITS, rng.randint(1, 3)):
            edit(project, rng)
        if broken:
            (project / "content/users/member-001.yaml").write_text("name: [unclosed\n")
        elif step == 4:
            add_users(project, 2)  # member-001 back to good, and member-000 rewritten
        after = sources()
        for path in before.keys() | after.keys():  # what the file events would name
            if before.get(path) != after.get(path):
                scan.note(path)
        if broken:
            with pytest.raises(SiteError):
                freeze()
            continue
        freeze()
        assert snapshot(project / "build") == clean_copy(project, tmp_path, f"step-{step}"), f"step {step}"
    assert [moved is not None for moved in partial] == [False, True, True, True, False, False, True, True, True]
    assert all(len(moved) <= 6 for moved in partial if moved is not None)


def test_a_share_reads_its_records_in_order_and_refuses_a_slug_it_does_not_list():
    loaded = []
    records = incremental.LazyRecords(incremental.ListedSlugs(["ada", "alan"]),
                                      lambda slug: loaded.append(slug) or slug.title())
    assert records.values() == ["Ada", "Alan"] and records.items() == [("ada", "Ada"), ("alan", "Alan")]
    assert list(records) == ["ada", "alan"] and len(records) == 2
    assert "grace" not in records and records.get("grace") is None
    with pytest.raises(KeyError):
        records["grace"]
    assert records["ada"] == "Ada" and records.get("alan") == "Alan"
    assert loaded == ["ada", "alan"]  # each loaded once, then kept


@pytest.mark.parametrize("slugs", [
    ["a-b", "a", "ab", "b", "user-00002", "user-00010"],  # file-name order: "a-b.yaml" comes before "a.yaml"
    ["b", "a", "c"],  # out of that order: found all the same
    ["a", "a-b"],  # slug order, not file-name order
])
def test_a_worker_finds_each_packed_record_by_its_slug_in_any_order_of_lookups(slugs):
    packed = render.PackedRecords()
    for slug in slugs:
        packed.add(slug, marshal.dumps((slug.upper(),)))
    packed.index()
    assert list(packed) == slugs and len(packed) == len(slugs)
    for slug in slugs + slugs[::-1] + random.Random(5).sample(slugs, len(slugs)):
        assert slug in packed and packed.values_at(packed.position(slug)) == (slug.upper(),)
    for stranger in ("", "a-", "zz", "user-00003", None):
        assert stranger not in packed
    with pytest.raises(KeyError):
        packed.position("zz")
