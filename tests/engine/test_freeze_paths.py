"""Output paths are checked even when content validation is bypassed.

Frozen-Flask joins a decoded URL to the destination as it is; the freezer
must refuse any page that would land outside the build or on another page.
"""

from __future__ import annotations

import pytest

from support import EXAMPLE
from sitegen.errors import SiteError
from sitegen.freeze import build as freeze, render


def freeze_with_users(monkeypatch, tmp_path, *usernames):
    """Freeze the example with extra users whose names never went through validation
    (their files, never made, read as Ada Lovelace's)."""
    checked_names = freeze.Build._slugs
    read_file = render.read_file
    ada = read_file(EXAMPLE / "content" / "users" / "ada-lovelace.yaml")

    def names_past_validation(build):
        slugs, errors = checked_names(build)
        return {**slugs, "users": slugs["users"] + list(usernames)}, errors

    def read_as_ada(path):
        return ada if path.stem in usernames else read_file(path)

    monkeypatch.setattr(freeze.Build, "_slugs", names_past_validation)
    monkeypatch.setattr(render, "read_file", read_as_ada)
    dest = tmp_path / "build"
    with pytest.raises(SiteError) as caught:
        freeze.freeze_site(EXAMPLE, dest)
    assert not dest.exists()
    assert not any(tmp_path.iterdir()), "the staging or state folder was left behind"
    return str(caught.value)


@pytest.mark.parametrize("slug", ["..", "."])
def test_dot_segments_cannot_escape_or_overwrite(monkeypatch, tmp_path, slug):
    message = freeze_with_users(monkeypatch, tmp_path, slug)
    assert "does not map to a file inside the build" in message


def test_case_twins_cannot_land_on_one_file(monkeypatch, tmp_path):
    message = freeze_with_users(monkeypatch, tmp_path, "Twin", "twin")
    assert "would be written to the same file" in message


def test_case_twins_from_different_workers_are_caught_when_their_pages_meet():
    with pytest.raises(SiteError, match="would be written to the same file"):
        render.check_collisions(["users/ada/index.html", "users/Twin/index.html", "users/twin/index.html"])


def test_overlong_names_are_refused_before_the_file_system_fails(monkeypatch, tmp_path):
    message = freeze_with_users(monkeypatch, tmp_path, "x" * 300)
    assert "is over 200 bytes" in message


def test_site_pages_that_land_on_one_file_are_refused_before_any_page_is_rendered(make_project, monkeypatch,
                                                                                   tmp_path):
    root = make_project("events")
    site_py = root / "site.py"
    site_py.write_text(site_py.read_text().replace('@site.route("/contact/")', (
        '@site.route("/Contact/")\ndef contact_twin():\n    return render_template("contact.html")\n\n\n'
        '@site.route("/contact/")')))

    def render_share(*args):
        raise AssertionError("a page was rendered")

    monkeypatch.setattr(render, "render_share", render_share)
    twins = "'Contact/index.html' and 'contact/index.html' would be written to the same file"
    with pytest.raises(SiteError, match=twins):
        freeze.freeze_site(root, tmp_path / "build", jobs=1)
