"""Watching files for the preview: what counts as an edit, batching, and the site's epoch."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path, PurePath

import pytest
from tornado.ioloop import IOLoop

from sitegen.file_events import is_ignored
from sitegen.preview.watch import FileWatcher, Fingerprint


@pytest.mark.parametrize("path", ["build/index.html", "uploads/a.png", ".git/config", ".venv/x.py",
                                  "users/.ada.yaml.swp", "users/ada.yaml~", "4913", "#ada.yaml#",
                                  "__pycache__/app.cpython-311.pyc"])
def test_noise_is_ignored(path):
    assert is_ignored(PurePath(path))


@pytest.mark.parametrize("path", ["users/ada-lovelace.yaml", "styles/site.css", "profile.html"])
def test_sources_are_watched(path):
    assert not is_ignored(PurePath(path))


@pytest.mark.parametrize("path", ["build/app.css", "node_modules/lib/index.js", "uploads/logo.png"])
def test_every_file_of_a_folder_published_whole_is_a_source(path):
    assert not is_ignored(PurePath(path), whole=True)


@pytest.mark.parametrize("path", ["build/.app.css.swp", "node_modules/.cache/x.js", ".vite/deps.js"])
def test_hidden_and_scratch_files_of_a_folder_published_whole_are_noise(path):
    """The freeze leaves them out of the build too (STATIC_IGNORE's ".?*")."""
    assert is_ignored(PurePath(path), whole=True)


def watch_while(folder: Path, edits, *, top_level: list[Path] = (),
                whole: list[Path] = ()) -> list[tuple[float, set[Path]]]:
    """Run a FileWatcher on ``folder`` while ``edits()`` runs; the batches with their times."""
    batches = []
    ready, loops = threading.Event(), []

    def run():
        asyncio.set_event_loop(asyncio.new_event_loop())
        loop = IOLoop.current()
        watcher = FileWatcher([folder], lambda paths: batches.append((time.monotonic(), paths)),
                              top_level=top_level, whole=whole)
        watcher.start(loop)
        loops.append(loop)
        ready.set()
        loop.start()
        watcher.stop()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(5)
    edits()
    time.sleep(0.5)
    loops[0].add_callback(loops[0].stop)
    thread.join(5)
    return batches


def test_the_sites_own_python_files_are_watched_but_not_the_rest_of_its_folder(tmp_path):
    (tmp_path / "content").mkdir()
    (tmp_path / "notes").mkdir()

    def edits():
        for name in ("site.py", "README.md", "notes/todo.py", "content/a.yaml"):
            (tmp_path / name).write_text("x")

    batches = watch_while(tmp_path / "content", edits, top_level=[tmp_path])
    assert set().union(*(paths for _, paths in batches)) == {tmp_path / "site.py", tmp_path / "content/a.yaml"}


def test_a_burst_of_saves_is_batched(tmp_path):
    names = [tmp_path / f"user-{n}.yaml" for n in range(20)]
    batches = watch_while(tmp_path, lambda: [name.write_text("x") for name in names])
    assert set().union(*(paths for _, paths in batches)) == set(names)
    assert len(batches) < len(names)


def test_the_last_of_two_quick_saves_is_never_dropped(tmp_path):
    target = tmp_path / "ada.yaml"
    second_save = []

    def two_saves():
        target.write_text("first")
        time.sleep(0.3)
        second_save.append(time.monotonic())
        target.write_text("second")

    batches = watch_while(tmp_path, two_saves)
    assert any(at > second_save[0] and target in paths for at, paths in batches)


def test_a_save_under_a_static_build_folder_makes_a_batch(tmp_path):
    (tmp_path / "build").mkdir()
    target = tmp_path / "build/app.css"
    batches = watch_while(tmp_path, lambda: target.write_text("x"), whole=[tmp_path])
    assert any(target in paths for _, paths in batches)


def test_editor_scratch_files_make_no_batch(tmp_path):
    batches = watch_while(tmp_path, lambda: (tmp_path / ".ada.yaml.swp").write_text("x"))
    assert batches == []


def test_fingerprint_follows_files_and_agrees_across_processes(tmp_path):
    source = tmp_path / "site.css"
    source.write_text("a")
    first = Fingerprint([tmp_path])
    assert str(Fingerprint([tmp_path])) == str(first)
    (tmp_path / ".site.css.swp").write_text("scratch")
    assert str(Fingerprint([tmp_path])) == str(first)
    before = str(first)
    os.utime(source, ns=(0, 10**9))
    first.update(source)
    assert str(first) != before
    assert str(first) == str(Fingerprint([tmp_path]))


def test_fingerprint_of_a_folder_published_whole_sees_its_build_folder(tmp_path):
    (tmp_path / "build").mkdir()
    bundle = tmp_path / "build/app.js"
    bundle.write_text("a")
    before = str(Fingerprint([tmp_path], whole=[tmp_path]))
    assert str(Fingerprint([tmp_path])) != before  # not published whole: build/ is output
    bundle.write_text("ab")
    assert str(Fingerprint([tmp_path], whole=[tmp_path])) != before


def test_fingerprint_skips_linked_folders_and_survives_a_loop_of_links(tmp_path):
    (tmp_path / "node_modules/a").mkdir(parents=True)
    (tmp_path / "node_modules/b").mkdir()
    (tmp_path / "node_modules/a/b").symlink_to("../b")
    (tmp_path / "node_modules/b/a").symlink_to("../a")
    (tmp_path / "node_modules/a/index.js").write_text("x")
    seen = Fingerprint([tmp_path], whole=[str(tmp_path)])  # a str names the same folder as a Path
    assert str(seen) != str(Fingerprint([]))
    assert str(seen) == str(Fingerprint([tmp_path], whole=[tmp_path]))
