"""The preview in a real headless browser: edits show up in an open tab by themselves."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from support import REPO, PreviewProcess

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium installed (apt-get install chromium)")
playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect
TIMEOUT_MS = 5000


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield browser
        browser.close()


@pytest.fixture
def project(make_project):
    return make_project()


@pytest.fixture
def preview(project):
    server = PreviewProcess(project)
    yield server
    server.stop()


@pytest.fixture
def tab(browser, preview):
    page = browser.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    yield page
    page.close()


def open_and_mark(tab, url: str) -> None:
    """Open ``url`` and leave a marker that only survives if the page is never reloaded."""
    tab.goto(url)
    tab.wait_for_function("window.WebSocket && document.readyState === 'complete'")
    time.sleep(0.2)  # let the reload client connect
    tab.evaluate("window.previewMarker = 'still here'")


def marker(tab):
    return tab.evaluate("window.previewMarker || null")


def replace_in(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_profile_edit_shows_in_the_open_tab(tab, preview, project):
    open_and_mark(tab, preview.url + "users/ada-lovelace/")
    replace_in(project / "content/users/ada-lovelace.yaml", "name: Ada Lovelace", "name: Ada King")
    expect(tab.locator("h1")).to_have_text("Ada King")
    assert marker(tab) is None  # reloaded by the preview, not by hand


def test_two_quick_saves_end_with_the_second(tab, preview, project):
    profile = project / "content/users/ada-lovelace.yaml"
    open_and_mark(tab, preview.url + "users/ada-lovelace/")
    replace_in(profile, "name: Ada Lovelace", "name: First Save")
    time.sleep(0.3)
    replace_in(profile, "name: First Save", "name: Second Save")
    expect(tab.locator("h1")).to_have_text("Second Save")
    time.sleep(1)
    expect(tab.locator("h1")).to_have_text("Second Save")


def test_stylesheet_edit_applies_without_reloading(tab, preview, project):
    open_and_mark(tab, preview.url)
    stylesheet = project / "static/styles/site.css"
    stylesheet.write_text(stylesheet.read_text() + "\nbody { background-color: rgb(1, 2, 3); }\n")
    tab.wait_for_function("getComputedStyle(document.body).backgroundColor === 'rgb(1, 2, 3)'")
    assert marker(tab) == "still here"
    assert tab.locator('link[href*="site.css"]').count() == 1  # the old one was removed


def test_broken_template_shows_the_error_and_the_tab_heals(tab, preview, project):
    template = project / "templates/profile.html"
    open_and_mark(tab, preview.url + "users/ada-lovelace/")
    replace_in(template, "{% endblock %}", "{% endblok %}")
    expect(tab.locator(".preview-errors")).to_contain_text("templates/profile.html:")
    assert "Traceback" not in tab.content()
    replace_in(template, "{% endblok %}", "{% endblock %}")
    expect(tab.locator("h1")).to_have_text("Ada Lovelace")
    assert sum("templates/profile.html" in line for line in preview.lines) == 1


def test_engine_edit_restarts_and_the_tab_reloads_once_back(tab, preview):
    open_and_mark(tab, preview.url + "about/")
    engine_file = REPO / "sitegen" / "__init__.py"
    os.utime(engine_file)  # a save without a change is still a Python edit
    tab.wait_for_function("window.previewMarker === undefined && document.readyState === 'complete'",
                          timeout=15000)
    expect(tab.locator("h1")).to_have_text("About Wordsmiths")
    assert any("restarting" in line for line in preview.lines)
