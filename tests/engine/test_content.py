"""Content loading: every problem is one line naming file, line and column."""

from __future__ import annotations

import datetime as dt

import pytest

from sitegen.content.loader import load_content
from sitegen.errors import ContentErrors
from sitegen.site import load_site

GOOD_USER = """\
name: Test Person
joined: 2020-01-31
awards: [One]
"""


def write_user(root, slug, text=None):
    path = root / "content" / "users" / f"{slug}.yaml"
    path.write_text(GOOD_USER.format(slug=slug) if text is None else text)
    return path


def errors_of(root) -> list[str]:
    with pytest.raises(ContentErrors) as caught:
        load_content(load_site(root))
    return [str(error) for error in caught.value.errors]


def test_example_content_loads_with_typed_fields(example_content):
    guido = example_content.users["guido-van-rossum"]
    assert guido.name == "Guido van Rossum"
    assert guido.joined == dt.date(2009, 2, 20)
    assert len(guido.awards) == 3
    assert len(example_content.users) >= 12
    assert len(example_content.stores) >= 8
    assert any(not user.awards for user in example_content.users.values())
    assert example_content.stores["new-york"].city == "New York"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("joined: 2020-01-01\nname: [unclosed\n", ":3:1: invalid YAML"),
        ("bio: hi\njoined: 2020-01-01\n", ":1:1: missing required field 'name'"),
        ("bio: hi\nname: no\njoined: 2020-01-01\n", ":2:7: expected text, got a boolean"),
        ("bio: hi\nname: N\njoined: 12:30:00\n", ":3:9: expected a date written YYYY-MM-DD"),
        ("bio: hi\nname: N\njoined: 2020-01-01\njoined: 2021-01-01\n",
         ":4:1: duplicate key 'joined' (first set on line 3)"),
        ("bio: hi\nname: N\njoined: 2020-01-01\nemail: a@b.c\n", ":4:1: unknown field 'email'"),
        ("bio: hi\nname: &n N\njoined: 2020-01-01\nbio: *n\n", ":2:7: anchors (&n) are not allowed"),
        ("bio: hi\nname: N\njoined: 2020-01-01\nawards: [ok, 0755]\n", ":4:14: expected text, got a number"),
        ("name: N\njoined: 2020-01-01\nbio: ''\n", ":3:6: must not be empty"),
        ("", ":1:1: file is empty"),
        ("- a list\n", ":1:1: expected a mapping of fields"),
    ],
)
def test_bad_user_file_is_reported_with_file_line_and_column(make_project, text, expected):
    root = make_project()
    write_user(root, "bad-yaml", text)
    (error,) = errors_of(root)
    assert error.startswith(f"content/users/bad-yaml.yaml{expected}")


def test_all_errors_of_a_run_are_reported_together(make_project):
    root = make_project()
    write_user(root, "first", "name: [\n")
    write_user(root, "second", "bio: hello\n")
    found = errors_of(root)
    assert [line.split(":")[0] for line in found] == ["content/users/first.yaml", "content/users/second.yaml"]


@pytest.mark.parametrize(
    ("slug", "problem"),
    [
        ("Upper-Case", "not a valid slug"),
        ("under_score", "not a valid slug"),
        ("double--hyphen", "not a valid slug"),
        ("über", "not a valid slug"),
        ("con", "reserved"),
        ("x" * 65, "longer than 64 characters"),
    ],
)
def test_unsafe_slug_is_refused(make_project, slug, problem):
    root = make_project()
    write_user(root, slug)
    (error,) = errors_of(root)
    assert error.startswith(f"content/users/{slug}.yaml:1:1: ")
    assert problem in error


def test_case_twins_are_refused_naming_both_files(make_project):
    root = make_project()
    write_user(root, "Ada-Lovelace")
    found = errors_of(root)
    assert "content/users/Ada-Lovelace.yaml:1:1: name collides with content/users/ada-lovelace.yaml" \
        " (same URL after case folding)" in found
    assert "content/users/ada-lovelace.yaml:1:1: name collides with content/users/Ada-Lovelace.yaml" \
        " (same URL after case folding)" in found


def test_oversized_file_is_refused(make_project):
    root = make_project()
    write_user(root, "huge", GOOD_USER.format(slug="huge") + "bio: " + "x" * 300_000 + "\n")
    (error,) = errors_of(root)
    assert error.startswith("content/users/huge.yaml:1:1: file is")


def test_store_hours_reject_yaml_sexagesimal_numbers(make_project):
    root = make_project()
    path = root / "content" / "stores" / "paris.yaml"
    path.write_text("city: Paris\nname: P\naddress: A\nphone: '1'\nhours:\n  Monday: 10:00\n")
    (error,) = errors_of(root)
    assert error.startswith("content/stores/paris.yaml:6:11: expected text, got a number")


def test_missing_site_settings_are_reported(make_project):
    root = make_project()
    (root / "content" / "site.yaml").unlink()
    assert errors_of(root) == ["content/site.yaml:1:1: missing: every site needs content/site.yaml"]
