"""YAML that PyYAML cannot turn into a value is one line naming file, line and column, never a traceback."""

from __future__ import annotations

import pytest

from sitegen.content.yaml_source import read_yaml
from sitegen.errors import ContentError

# A user file as the example writes it; each case below changes one line of it.
USER = "name: Test Person\njoined: 2020-01-31\n"


def error_of(tmp_path, text: str | bytes) -> str:
    path = tmp_path / "content" / "users" / "someone.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    with pytest.raises(ContentError) as caught:
        read_yaml(path, tmp_path)
    message = str(caught.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("joined: 2024-02-30", ":2:9: '2024-02-30' is not a valid date (day is out of range for month)"),
        ("joined: !!timestamp nope", ":2:9: 'nope' is not a valid date"),
        ("joined: !!int abc", ":2:9: 'abc' is not an integer"),
        ("joined: !!float ''", ":2:9: '' is not a number"),
        ("joined: !!bool maybe", ":2:9: 'maybe' is not a boolean"),
        ("joined: " + "1" * 5000, ":2:9: a number of 5,000 digits is too long"),
        ("[a]: x", ":3:1: a key must be plain text, not a list"),
        ("{a: b}: x", ":3:1: a key must be plain text, not a mapping"),
        ("<<: {name: Someone Else}", ":3:1: merge keys (<<) are not allowed in content"),
    ],
    ids=["impossible-date", "bad-timestamp", "bad-int", "empty-float", "bad-bool", "huge-int",
         "list-key", "mapping-key", "merge-key"],
)
def test_values_and_keys_yaml_cannot_build_are_located(tmp_path, line, expected):
    text = USER.format(slug="someone").replace("joined: 2020-01-31", line) if line.startswith("joined") \
        else USER.format(slug="someone") + line + "\n"
    assert error_of(tmp_path, text) == "content/users/someone.yaml" + expected


def test_a_control_character_is_located_on_its_own_line_and_column(tmp_path):
    message = error_of(tmp_path, USER.format(slug="someone") + "bio: one\x07two\n")
    assert message.startswith("content/users/someone.yaml:3:9: control character U+0007 is not allowed")
    assert "position" not in message


def test_yaml_errors_are_one_line(tmp_path):
    message = error_of(tmp_path, "name: a\n  b: [\n")
    assert message.startswith("content/users/someone.yaml:") and "invalid YAML" in message


def test_deep_nesting_is_one_line(tmp_path):
    assert "invalid YAML" in error_of(tmp_path, "a: " + "[" * 5000 + "\n")
