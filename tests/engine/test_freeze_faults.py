"""Faults while a freeze commits: build/ ends wholly old or wholly new, the next freeze works, and
every failure is one line.

Moves that fail (an immutable or read-only folder, another device, a full disk)
are simulated by making os.replace / os.rename fail at a chosen call while a
commit is applied; a destination that is a mount point by making renames fail
with EXDEV whenever they cross its boundary.
"""

from __future__ import annotations

import builtins
import errno
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from sitegen.cli import main
from sitegen.freeze import incremental, render
from sitegen.freeze import freeze_site
from support import Crash, snapshot
from test_freeze_incremental import USER, add_users, clean_copy


@pytest.fixture
def project(make_project):
    root = make_project()
    add_users(root, 70)  # over PARALLEL_MIN: the record pages render in worker processes
    return root


def freeze(root: Path, *args: str):
    result = CliRunner().invoke(main, ["--root", str(root), "freeze", *args])
    assert "Traceback" not in result.output, result.output
    return result


def edit_site(root: Path) -> None:
    """A rename (profile, /users/, home), a deletion and a new user in a new folder."""
    path = root / "content/users/member-007.yaml"
    path.write_text(path.read_text().replace("Member 7", "Renamed Seven"))
    (root / "content/users/member-010.yaml").unlink()
    (root / "content/users/newcomer.yaml").write_text(USER.format(
        slug="newcomer", name="New Comer", year=1, month=2, day=3, bio="New."))


def fail_moves(monkeypatch, fail_at: int, code: int | BaseException, *, undo_fails: bool = False) -> None:
    """Make the ``fail_at``-th move of each commit fail with errno ``code`` or raise ``code``
    (and every later move with ``undo_fails``)."""
    real_apply = incremental.BuildFolders.apply_commit
    real = {"replace": os.replace, "rename": os.rename}

    def apply(folders):
        calls = 0

        def failing(name):
            def move(source, target):
                nonlocal calls
                calls += 1
                if calls == fail_at or (undo_fails and calls > fail_at):
                    if isinstance(code, BaseException):
                        raise code
                    raise OSError(code, os.strerror(code), str(source), None, str(target))  # as a move names them
                return real[name](source, target)
            return move

        monkeypatch.setattr(os, "replace", failing("replace"))
        monkeypatch.setattr(os, "rename", failing("rename"))
        try:
            return real_apply(folders)
        finally:
            monkeypatch.setattr(os, "replace", real["replace"])
            monkeypatch.setattr(os, "rename", real["rename"])

    monkeypatch.setattr(incremental.BuildFolders, "apply_commit", apply)


def leftovers(root: Path) -> list[str]:
    """What is in the project besides its sources (and Python's cache of site.py, made when the site loads)."""
    return sorted(p.name for p in root.iterdir()
                  if p.name not in ("site.py", "content", "templates", "static", "__pycache__"))


@pytest.mark.parametrize(("fail_at", "code"), [(1, errno.EPERM), (3, errno.EXDEV), (5, errno.ENOSPC),
                                               (6, errno.EROFS), (10, errno.EROFS)])  # 10: the state, last
def test_a_failed_move_leaves_build_as_it_was_and_the_next_freeze_works(project, tmp_path, monkeypatch,
                                                                          fail_at, code):
    assert freeze(project).exit_code == 0
    before, state = snapshot(project / "build"), snapshot(project / ".build.state")
    edit_site(project)
    with monkeypatch.context() as patch:
        fail_moves(patch, fail_at, code)
        for _ in range(2):  # nothing pending replays it: the second failure is the same one line
            result = freeze(project)
            assert result.exit_code == 1
            assert len(result.output.splitlines()) == 1 and "is unchanged" in result.output
            assert snapshot(project / "build") == before
            assert snapshot(project / ".build.state") == state
            assert leftovers(project) == [".build.state", "build"]
    if code == errno.ENOSPC:
        assert "no space left on the disk of" in result.output
    else:  # the file it could not write, not the staged one it was moving
        written = ".build.state/state.marshal" if fail_at == 10 else f"build{os.sep}"
        assert f"{os.sep}next{os.sep}" not in result.output and f"{project / written}" in result.output
    assert freeze(project).exit_code == 0
    assert snapshot(project / "build") == clean_copy(project, tmp_path, "after")


def test_a_failed_undo_is_finished_by_the_next_freeze(project, tmp_path, monkeypatch):
    assert freeze(project).exit_code == 0
    edit_site(project)
    with monkeypatch.context() as patch:
        fail_moves(patch, 3, errno.EPERM, undo_fails=True)
        result = freeze(project)
    assert result.exit_code == 1 and "the next freeze will try again" in result.output
    assert len(result.output.splitlines()) == 1
    assert freeze(project).exit_code == 0
    assert snapshot(project / "build") == clean_copy(project, tmp_path, "after")


def test_a_failed_first_freeze_leaves_nothing_behind(project, monkeypatch):
    fail_moves(monkeypatch, 1, errno.EXDEV)
    result = freeze(project)
    assert result.exit_code == 1
    assert leftovers(project) == []


def test_a_failed_first_freeze_into_an_empty_folder_leaves_it_empty(project, monkeypatch):
    (project / "build").mkdir()
    fail_moves(monkeypatch, 2, errno.EPERM)
    assert freeze(project).exit_code == 1
    assert list((project / "build").iterdir()) == []


@pytest.fixture
def mount_point(monkeypatch):
    """Make build/ behave as another device: a rename across its boundary fails with EXDEV."""
    holder = {}
    real = {"replace": os.replace, "rename": os.rename}

    def crossing(name):
        def move(source, target):
            dest = holder.get("dest")
            if dest is not None:
                inside = [Path(os.path.abspath(path)).is_relative_to(dest) for path in (source, target)]
                if inside[0] != inside[1]:
                    raise OSError(errno.EXDEV, os.strerror(errno.EXDEV), str(target))
            return real[name](source, target)
        return move

    monkeypatch.setattr(os, "replace", crossing("replace"))
    monkeypatch.setattr(os, "rename", crossing("rename"))
    monkeypatch.setattr(incremental.BuildFolders, "_dest_is_a_mount_point",
                        lambda folders: folders.dest == holder.get("dest") and folders.dest.is_dir())
    return holder


def test_a_destination_that_is_a_mount_point_works(project, tmp_path, mount_point):
    dest = project / "build"
    dest.mkdir()
    mount_point["dest"] = dest
    for round in range(3):
        result = freeze(project)
        assert result.exit_code == 0, result.output
        assert not (dest / incremental.INSIDE_STAGING).exists()
        assert leftovers(project) == [".build.state", "build"]
        mount_point["dest"] = None
        assert snapshot(dest) == clean_copy(project, tmp_path, f"round-{round}")
        mount_point["dest"] = dest
        edit_site(project) if round == 0 else (project / f"content/users/member-{20 + round:03d}.yaml").unlink()


def test_a_folder_named_like_a_staging_folder_is_never_removed(project):
    mine = project / ".build.staging"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    assert freeze(project).exit_code == 0
    edit_site(project)
    assert freeze(project).exit_code == 0
    assert (mine / "notes.txt").read_text() == "mine"


def test_a_full_disk_while_the_state_is_written_is_one_line_and_leaves_no_temporary_file(project, monkeypatch):
    monkeypatch.setattr(incremental, "RACY_NS", 0)  # the files were just copied: trust their entries at once
    assert freeze(project).exit_code == 0
    state = snapshot(project / ".build.state")
    os.utime(project / "templates/base.html")  # touched, not edited: only the state is written

    def full(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))

    real_write_bytes = Path.write_bytes
    monkeypatch.setattr(Path, "write_bytes", full)
    result = freeze(project)
    assert result.exit_code == 1
    assert result.output.strip() == f"no space left on the disk of {project / 'build'}"
    monkeypatch.setattr(Path, "write_bytes", real_write_bytes)
    assert snapshot(project / ".build.state") == state


@pytest.mark.parametrize("freeze_kind", ["first", "incremental"])
def test_too_few_file_descriptors_is_one_line_that_says_what_to_do(project, freeze_kind):
    if freeze_kind == "incremental":
        assert freeze(project).exit_code == 0
        before = snapshot(project / "build")
        for number in range(70):  # enough pages for workers
            path = project / f"content/users/member-{number:03d}.yaml"
            path.write_text(path.read_text().replace(f"Bio {number}.", "Changed."))
    done = subprocess.run([sys.executable, str(project / "site.py"), "freeze", "--jobs", "2"], cwd=project,
                          capture_output=True, text=True, timeout=120,
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (16, 16)))
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == ("too many open files (Too many open files): raise the limit (ulimit -n) "
                           "or use fewer --jobs\n")
    if freeze_kind == "first":
        assert leftovers(project) == []
    else:
        assert snapshot(project / "build") == before
        assert not (project / ".build.state/next").exists()


def test_a_full_disk_in_a_worker_names_the_disk_in_one_line(project, monkeypatch):
    def full(path, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)

    monkeypatch.setattr(render, "_write_file", full)
    result = freeze(project, "--jobs", "2")
    assert result.exit_code == 1
    (line,) = result.output.splitlines()
    assert line.startswith(f"no space left on the disk of {project / 'build'} (while freezing /")
    assert leftovers(project) == []


def test_an_error_in_a_worker_is_the_same_one_line(project, monkeypatch):
    from sitegen.errors import SiteError

    def broken(*arguments):
        raise SiteError("content/users/member-001.yaml:1:1: broken")

    monkeypatch.setattr(render, "parse_share", broken)
    for jobs in ("1", "2"):
        result = freeze(project, "--jobs", jobs)
        assert (result.exit_code, result.output) == (1, "content/users/member-001.yaml:1:1: broken\n")


@pytest.mark.parametrize("when", ["rendering", "waiting for its share"])
def test_a_worker_killed_is_one_line_and_leaves_the_build_as_it_was(project, tmp_path, monkeypatch, when):
    """As the system's out-of-memory killer would: SIGKILL, no word from the worker."""
    assert freeze(project).exit_code == 0
    before, state = snapshot(project / "build"), snapshot(project / ".build.state")
    (project / "templates/base.html").write_text((project / "templates/base.html").read_text() + "\n")
    parent = os.getpid()
    if when == "rendering":
        real_render = render.render_share

        def killed(*arguments, **options):
            if os.getpid() != parent:
                os.kill(os.getpid(), signal.SIGKILL)
            return real_render(*arguments, **options)

        monkeypatch.setattr(render, "render_share", killed)
    else:
        real_hand_over = render._Workers.hand_over

        def killed_first(workers, work, share, **options):
            process = workers.processes[workers.reserved[work]]
            os.kill(process.pid, signal.SIGKILL)
            process.join()
            return real_hand_over(workers, work, share, **options)

        monkeypatch.setattr(render._Workers, "hand_over", killed_first)
    result = freeze(project, "--jobs", "2")
    assert result.exit_code == 1
    assert result.output == ("a freeze worker was killed by SIGKILL before it finished (the system does that "
                             "when memory runs out: fewer --jobs use less); the build is unchanged\n")
    assert (snapshot(project / "build"), snapshot(project / ".build.state")) == (before, state)
    monkeypatch.undo()
    assert freeze(project).exit_code == 0
    assert snapshot(project / "build") == clean_copy(project, tmp_path, "after")


@pytest.mark.parametrize("where", ["freeze", "worker"])
def test_running_out_of_memory_is_one_line(project, monkeypatch, where):
    def exhausted(*arguments, **options):
        raise MemoryError()

    monkeypatch.setattr(render, "check_collisions" if where == "freeze" else "render_share", exhausted)
    result = freeze(project, "--jobs", "2")
    assert result.exit_code == 1
    assert result.output == {"freeze": "the freeze ran out of memory; fewer --jobs use less\n",
                             "worker": "a freeze worker ran out of memory; fewer --jobs use less\n"}[where]
    assert leftovers(project) == []


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_an_unreadable_static_file_is_named_as_a_file_not_read_not_as_the_build_not_written(
        project, monkeypatch, jobs):
    real_open, unreadable = builtins.open, str(project / "static/styles/site.css")

    def denying_open(file, *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and os.fspath(file) == unreadable:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), unreadable)
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", denying_open)
    result = freeze(project, "--jobs", jobs)
    assert result.exit_code == 1
    (line,) = result.output.splitlines()
    assert line.startswith("cannot read static/styles/site.css: Permission denied")
    assert leftovers(project) == []


def test_a_destination_through_a_file_is_one_line(project, tmp_path):
    (tmp_path / "plain").write_text("x")
    result = freeze(project, "--dest", str(tmp_path / "plain" / "build"))
    assert result.exit_code == 1
    assert "is a file" in result.output


def test_a_read_only_place_for_the_state_is_one_line(project, monkeypatch):
    real_mkdir = Path.mkdir

    def read_only(self, *args, **kwargs):
        if self.name.endswith(".state"):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", read_only)
    result = freeze(project)
    assert result.exit_code == 1
    assert "Read-only file system" in result.output and len(result.output.splitlines()) == 1


@pytest.mark.parametrize("fail_at", [1, 3, 6])
def test_ctrl_c_while_a_commit_is_applied_puts_build_back_and_stops(project, tmp_path, monkeypatch, fail_at):
    assert freeze(project).exit_code == 0
    before, state = snapshot(project / "build"), snapshot(project / ".build.state")
    edit_site(project)
    with monkeypatch.context() as patch:
        fail_moves(patch, fail_at, KeyboardInterrupt())
        result = freeze(project)
    assert (result.exit_code, result.output.strip()) == (1, "Aborted!")
    assert (snapshot(project / "build"), snapshot(project / ".build.state")) == (before, state)
    assert freeze(project).exit_code == 0
    assert snapshot(project / "build") == clean_copy(project, tmp_path, "after")


@pytest.mark.parametrize("sent", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupt_once_the_new_build_stands_lets_the_freeze_end_as_done(project, tmp_path, monkeypatch, sent):
    """After the state is moved in, only tidying is left (20,000 backups at 20,000 users: seconds)."""
    assert freeze(project).exit_code == 0
    edit_site(project)
    real_empty = incremental._empty_known_folders

    def interrupted(*arguments, **options):
        os.kill(os.getpid(), sent)
        return real_empty(*arguments, **options)

    monkeypatch.setattr(incremental, "_empty_known_folders", interrupted)
    result = freeze(project)
    assert result.exit_code == 0 and result.output.startswith("Froze "), result.output
    assert not (project / ".build.state/next").exists()
    monkeypatch.undo()
    assert snapshot(project / "build") == clean_copy(project, tmp_path, "after")
    assert freeze(project).output.endswith("(0 rendered, 0 removed)\n")


@pytest.mark.parametrize("then", ["freeze again", "empty it, then freeze"])
def test_a_killed_first_freeze_into_an_empty_folder_leaves_it_usable(project, tmp_path, monkeypatch, then):
    dest = project / "build"
    dest.mkdir()
    fail_moves(monkeypatch, 5, Crash("killed"))
    with pytest.raises(Crash):
        freeze_site(project, dest)
    monkeypatch.undo()
    if then != "freeze again":
        for path in sorted(dest.rglob("*"), reverse=True):
            path.rmdir() if path.is_dir() else path.unlink()
    result = freeze(project)
    assert result.exit_code == 0, result.output
    assert snapshot(dest) == clean_copy(project, tmp_path, "clean")
    assert freeze(project).output.endswith("(0 rendered, 0 removed)\n")


@pytest.mark.parametrize("source", ["templates/about.html", "static/styles/site.css", "content/site.yaml"])
def test_an_edit_undone_during_a_freeze_leaves_no_stale_page(project, tmp_path, monkeypatch, source):
    """The state must claim the version rendered with, not the one hashed before rendering."""
    assert freeze(project).exit_code == 0
    path = project / source
    original = path.read_bytes()
    edited = original.replace(b"About", b"Abort") if b"About" in original else original + b"\n/* edited */\n"
    if source == "content/site.yaml":
        edited = original.replace(b"Wordsmiths", b"Wordsmiths!")
    assert edited != original
    path.write_bytes(edited)  # saved before the freeze: hashed by its scan
    real_compare = incremental.compare_sources

    def saved_again_after_the_scan(*args, **kwargs):
        changes = real_compare(*args, **kwargs)
        path.write_bytes(edited.replace(b"Abort", b"Abbot").replace(b"edited", b"again")
                         .replace(b"Wordsmiths!", b"Wordsmiths?"))
        return changes

    monkeypatch.setattr(incremental, "compare_sources", saved_again_after_the_scan)
    assert freeze(project, "--jobs", "1").exit_code == 0
    monkeypatch.undo()
    path.write_bytes(edited)  # the first save again: the version the scan hashed
    assert freeze(project).exit_code == 0
    assert snapshot(project / "build") == clean_copy(project, tmp_path, "clean")


def test_a_record_edited_during_a_freeze_and_undone_leaves_no_stale_listing(project, tmp_path, monkeypatch):
    """A page that reads a record from its file (the home page, for a template edit) must not leave
    the state claiming the record's fields as they were before."""
    assert freeze(project).exit_code == 0
    template = project / "templates" / "index.html"
    template.write_text(template.read_text() + "\n")  # the home page is rendered again, reading the users it shows
    record = project / "content" / "users" / "ada-lovelace.yaml"
    original = record.read_bytes()
    real_compare = incremental.compare_sources

    def edited_after_the_scan(*args, **kwargs):
        changes = real_compare(*args, **kwargs)
        record.write_bytes(original.replace(b"Ada Lovelace", b"Augusta Ada King"))
        return changes

    monkeypatch.setattr(incremental, "compare_sources", edited_after_the_scan)
    assert freeze(project, "--jobs", "1").exit_code == 0
    monkeypatch.undo()
    assert "Augusta Ada King" in (project / "build" / "index.html").read_text()
    record.write_bytes(original)  # the version the scan saw, and the state's field digests describe
    assert freeze(project).exit_code == 0
    assert snapshot(project / "build") == clean_copy(project, tmp_path, "clean")


def test_a_folder_of_yours_where_staging_goes_stops_the_freeze_untouched(project):
    assert freeze(project).exit_code == 0
    mine = project / ".build.state" / "next"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    edit_site(project)
    result = freeze(project)
    assert result.exit_code == 1 and "was not made by one" in result.output
    assert (mine / "notes.txt").read_text() == "mine"
    (mine / "notes.txt").unlink()  # an empty one (a freeze killed as it made it) is simply removed
    assert freeze(project).exit_code == 0
