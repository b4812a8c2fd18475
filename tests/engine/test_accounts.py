"""Accounts: `python site.py add-account` / `remove-account`, stored as hashes only."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from support import sign_in
from sitegen.live.accounts import ACCOUNTS_FILE, load_accounts
from sitegen.app import create_app
from sitegen.site import load_site
from sitegen.cli import main
from sitegen.content.loader import load_content
from sitegen.freeze import freeze_site


def run(root, *args, input=None):
    return CliRunner().invoke(main, ["--root", str(root), *args], input=input)


@pytest.fixture
def root(make_project):
    return make_project()


def test_add_account_prompts_twice_and_stores_only_a_hash(root):
    result = run(root, "add-account", "grace", input="s3cret words\ns3cret words\n")
    assert result.exit_code == 0, result.output
    assert result.output.endswith("Added account 'grace' in instance/accounts.yaml\n")
    assert "s3cret words" not in result.output
    text = (root / "instance/accounts.yaml").read_text()
    assert "s3cret words" not in text
    assert load_accounts(root / "instance/accounts.yaml", root)["grace"].startswith("scrypt:")


def test_the_new_account_can_sign_in(root):
    run(root, "add-account", "grace", "--password-stdin", input="s3cret words\n")
    site = load_site(root)
    app = create_app(site, load_content(site), live=True,
                     config={"TESTING": True, "SECRET_KEY": "k" * 32, "SITE_UPLOAD_FOLDER": root / "up"})
    client = app.test_client()
    assert sign_in(client, "grace", "s3cret words").status_code == 303


def test_add_account_again_changes_the_password(root):
    run(root, "add-account", "grace", "--password-stdin", input="first\n")
    before = load_accounts(root / "instance/accounts.yaml", root)["grace"]
    result = run(root, "add-account", "grace", "--password-stdin", input="second\n")
    assert result.exit_code == 0
    assert "Changed the password of 'grace'" in result.output
    assert load_accounts(root / "instance/accounts.yaml", root)["grace"] != before


@pytest.mark.parametrize("args, input, message", [
    (["add-account", "Grace Hopper", "--password-stdin"], "pw\n",
     "bad account name 'Grace Hopper': use lowercase ASCII letters, digits and single hyphens, "
     "at most 64 characters"),
    (["add-account", "../grace", "--password-stdin"], "pw\n", "bad account name '../grace'"),
    (["add-account", "grace", "--password-stdin"], "\n", "empty password: an account needs a password"),
    (["add-account", "grace"], "\n\n", "empty password: an account needs a password"),
    (["remove-account", "nobody"], None,
     "unknown account 'nobody': instance/accounts.yaml has no such account"),
])
def test_account_errors_are_one_line_and_exit_1(root, args, input, message):
    result = run(root, *args, input=input)
    assert result.exit_code == 1
    assert result.output.splitlines()[-1].startswith(message)
    assert not (root / "instance/accounts.yaml").exists()


def test_mismatched_confirmation_stores_nothing(root):
    result = run(root, "add-account", "grace", input="one\ntwo\n")
    assert result.exit_code == 1 and "do not match" in result.output
    assert not (root / "instance/accounts.yaml").exists()


def test_remove_account(root):
    run(root, "add-account", "grace", "--password-stdin", input="pw\n")
    run(root, "add-account", "alan", "--password-stdin", input="pw\n")
    result = run(root, "remove-account", "grace")
    assert result.exit_code == 0 and "Removed account 'grace'" in result.output
    assert list(load_accounts(root / "instance/accounts.yaml", root)) == ["alan"]


def test_a_plain_text_password_in_the_file_is_an_error_naming_the_line(root):
    (root / "instance").mkdir()
    (root / "instance/accounts.yaml").write_text("grace: hunter2\n")
    result = run(root, "remove-account", "grace")
    assert result.exit_code == 1
    assert result.output.startswith("instance/accounts.yaml:1:8: account 'grace' needs a password hash")


def test_freezing_never_reads_the_accounts(root, tmp_path):
    (root / "instance").mkdir()
    (root / "instance/accounts.yaml").write_text("[this is: not, valid")
    assert freeze_site(root, tmp_path / "build").pages > 0


def test_instance_and_uploads_are_git_ignored(git_ignored):
    paths = ["instance/secret_key", "instance/accounts.yaml", "instance/sessions.json",
             "uploads/ada/words.txt"]
    assert git_ignored(*paths) == paths
    assert git_ignored("content/users/ada.yaml", "static/style.css") == []


def test_password_hashes_are_kept_out_of_the_content_and_git(root, git_ignored):
    run(root, "add-account", "grace", "--password-stdin", input="pw\n")
    assert ACCOUNTS_FILE.parts[0] == "instance" and (root / ACCOUNTS_FILE).is_file()
    assert not (root / "content/accounts.yaml").exists()
    assert git_ignored(ACCOUNTS_FILE.as_posix()) == [ACCOUNTS_FILE.as_posix()]
    assert (root / ACCOUNTS_FILE).stat().st_mode & 0o777 == 0o600


def test_an_old_content_accounts_file_is_moved_saying_so(root):
    run(root, "add-account", "grace", "--password-stdin", input="pw\n")
    (root / ACCOUNTS_FILE).rename(root / "content/accounts.yaml")
    result = run(root, "add-account", "alan", "--password-stdin", input="pw\n")
    assert result.exit_code == 0
    assert "moved content/accounts.yaml to instance/accounts.yaml" in result.output
    assert not (root / "content/accounts.yaml").exists()
    assert sorted(load_accounts(root / ACCOUNTS_FILE, root)) == ["alan", "grace"]


def test_an_old_content_accounts_file_beside_the_new_one_is_refused(root):
    run(root, "add-account", "grace", "--password-stdin", input="pw\n")
    (root / "content/accounts.yaml").write_text("")
    result = run(root, "remove-account", "grace")
    assert result.exit_code == 1
    assert result.output.startswith("content/accounts.yaml is no longer read: the accounts are in "
                                    "instance/accounts.yaml")
    assert list(load_accounts(root / ACCOUNTS_FILE, root)) == ["grace"]
