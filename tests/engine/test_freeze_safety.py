"""Nothing from outside the project reaches build/ or an error; files directly in static/ are frozen;
template errors name their file."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from werkzeug.test import Client

from support import EXAMPLE
from sitegen.cli import main
from sitegen.content.loader import load_content
from sitegen.site import load_site
from sitegen.errors import ContentErrors
from sitegen.preview.server import PreviewMiddleware, PreviewSite
from support import snapshot

SECRET = "root:*:20228:0:99999:7:::\n"  # what /etc/shadow starts with


def freeze(root: Path, *args: str):
    result = CliRunner().invoke(main, ["--root", str(root), "freeze", *args])
    assert "Traceback" not in result.output
    return result


@pytest.fixture
def secret(tmp_path) -> Path:
    outside = tmp_path / "outside" / "shadow"
    outside.parent.mkdir()
    outside.write_text(SECRET)
    return outside


def assert_refused(result, link: str) -> None:
    assert result.exit_code == 1
    assert f"{link}: a link to a file outside the project" in result.output.splitlines()
    assert "root:" not in result.output and "shadow" not in result.output


@pytest.mark.parametrize("link", ["static/images/passwd", "static/passwd", "templates/secret.html",
                                  "content/users/someone.yaml", "content/site.yaml"])
def test_a_link_leading_outside_the_project_is_refused_by_name(make_project, secret, link):
    root = make_project()
    assert freeze(root).exit_code == 0
    before = snapshot(root / "build")
    (root / link).unlink(missing_ok=True)
    (root / link).symlink_to(secret)
    assert_refused(freeze(root), link)
    assert snapshot(root / "build") == before
    assert_refused(freeze(root, "--clean"), link)


def test_a_linked_folder_leading_outside_is_refused(make_project, secret):
    root = make_project()
    (root / "static" / "private").symlink_to(secret.parent, target_is_directory=True)
    assert_refused(freeze(root), "static/private")
    assert not (root / "build").exists()


def test_an_editors_lock_link_to_nowhere_is_not_a_source(make_project):
    """Emacs marks a file being edited with a link to nowhere beside it (.#name -> user@host.pid:time)."""
    root = make_project()
    for lock in ("templates/.#base.html", "static/styles/.#site.css"):
        (root / lock).symlink_to("someone@host.4242:1733300000")
    assert freeze(root).exit_code == 0
    ada = root / "content/users/ada-lovelace.yaml"
    ada.write_text(ada.read_text().replace("bio: ", "bio: Edited. ", 1))
    result = freeze(root)
    assert result.exit_code == 0, result.output
    assert "Edited." in (root / "build/users/ada-lovelace/index.html").read_text()
    assert not list((root / "build").rglob(".#*"))


def test_a_link_inside_the_project_is_followed(make_project):
    root = make_project()
    (root / "static" / "images" / "logo-copy.svg").symlink_to(root / "static" / "images" / "logo.svg")
    (root / "content" / "users" / "ada.yaml").symlink_to(root / "content" / "users" / "ada-lovelace.yaml")
    (root / "content" / "users" / "ada-lovelace.yaml").rename(root / "content" / "ada-lovelace.yaml")
    (root / "content" / "users" / "ada.yaml").unlink()
    (root / "content" / "users" / "ada-lovelace.yaml").symlink_to(Path("..") / "ada-lovelace.yaml")
    result = freeze(root)
    assert result.exit_code == 0, result.output
    build = root / "build"
    assert (build / "static/images/logo-copy.svg").read_bytes() == (EXAMPLE / "static/images/logo.svg").read_bytes()
    assert "Ada Lovelace" in (build / "users/ada-lovelace/index.html").read_text()


def test_content_loading_refuses_a_link_leading_outside(make_project, secret):
    root = make_project()
    (root / "content" / "users" / "someone.yaml").symlink_to(secret)
    with pytest.raises(ContentErrors) as caught:
        load_content(load_site(root))
    assert str(caught.value) == "content/users/someone.yaml:1:1: a link to a file outside the project"


def test_a_template_included_through_a_link_leading_outside_is_refused(make_project, secret):
    root = make_project()
    (root / "templates" / "secret.html").symlink_to(secret)
    about = root / "templates" / "about.html"
    about.write_text(about.read_text().replace("{% block main %}", '{% block main %}{% include "secret.html" %}'))
    from sitegen.app import create_app
    from sitegen.contained import RefusedTemplate

    site = load_site(root)
    app = create_app(site, load_content(site), config={"TESTING": True})
    with pytest.raises(RefusedTemplate, match="a link to a file outside the project"):
        app.test_client().get("/about/")


def test_the_preview_serves_no_file_from_outside(make_project, secret):
    root = make_project()
    (root / "static" / "images" / "passwd").symlink_to(secret)
    preview = Client(PreviewMiddleware(PreviewSite(root)))
    response = preview.get("/static/images/passwd")
    assert response.status_code == 403 and "root:" not in response.text
    assert "static/images/passwd: a link to a file outside the project" in response.text
    assert preview.get("/static/images/logo.svg").status_code == 200
    (root / "templates" / "secret.html").symlink_to(secret)
    site = PreviewSite(root)
    assert site.errors == ["templates/secret.html: a link to a file outside the project"]


def test_files_directly_in_static_are_frozen(make_project):
    root = make_project()
    (root / "static" / "hello.txt").write_text("hello\n")
    (root / "static" / "favicon.ico").write_bytes(b"\0\1icon")
    (root / "static" / ".hidden").write_text("editor state\n")
    assert freeze(root).exit_code == 0
    assert (root / "build" / "static" / "hello.txt").read_text() == "hello\n"
    assert (root / "build" / "static" / "favicon.ico").read_bytes() == b"\0\1icon"
    assert not (root / "build" / "static" / ".hidden").exists()


@pytest.mark.parametrize("template", ["base.html", "_user_card.html"])
def test_a_syntax_error_in_an_extended_or_imported_template_names_it(make_project, template):
    root = make_project()
    path = root / "templates" / template
    path.write_text("\n\n{% if %}\n" + path.read_text())
    result = freeze(root)
    assert result.exit_code == 1
    assert f"templates/{template}:3: Expected an expression" in result.output


def test_a_refused_include_says_it_was_refused(make_project):
    root = make_project()
    about = root / "templates" / "about.html"
    about.write_text(about.read_text().replace("{% block main %}", '{% block main %}{% include "../x.html" %}', 1))
    result = freeze(root)
    assert result.exit_code == 1
    assert "templates/about.html:" in result.output
    assert "refused template '../x.html': its name leads outside templates/" in result.output


def test_a_freeze_killed_while_removing_its_staging_leaves_it_marked_for_the_next(make_project, monkeypatch):
    import shutil

    from sitegen.freeze import freeze_site, incremental

    root = make_project()
    freeze_site(root, root / "build")
    staging = root / ".build.state" / "next"
    (staging / "tree" / "users").mkdir(parents=True)
    (staging / incremental.STAGING_MARK).write_bytes(b"")
    real_rmtree = shutil.rmtree

    def killed(path, *args, **kwargs):  # removes what it can reach of the mark, then the process dies
        Path(path, incremental.STAGING_MARK).unlink(missing_ok=True)
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(shutil, "rmtree", killed)
    with pytest.raises(KeyboardInterrupt):
        incremental.BuildFolders(root / "build").recover()
    assert (staging / incremental.STAGING_MARK).is_file()
    monkeypatch.setattr(shutil, "rmtree", real_rmtree)
    assert freeze_site(root, root / "build").rendered == 0
    assert not staging.exists()
