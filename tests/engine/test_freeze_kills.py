"""Freezes killed at random moments (SIGKILL) never leave build/ unusable or stale.

Seeded and bounded: ten kills of `python site.py freeze` in a subprocess,
the first into an existing empty folder, each after a random edit; then a
freeze that runs to the end must give what a clean freeze gives. Moving a
file in is slowed to a few milliseconds so that kills land inside commits
too, not only while pages render; the first kill waits for its commit.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support import EXAMPLE, REPO
from sitegen.freeze import freeze_site
from sitegen.freeze.build import MARKER
from support import snapshot
from test_freeze_incremental import USER, add_users, clean_copy

SEED, KILLS = 20261202, 10


def random_edit(root: Path, rng: random.Random, step: int) -> None:
    users = sorted((root / "content/users").glob("member-*.yaml"))
    choice = rng.randrange(5)
    if choice == 0:  # a rename: the profile and the pages that list names
        path = rng.choice(users)
        path.write_text(path.read_text().replace("name: ", f"name: Renamed {step} ", 1))
    elif choice == 1:
        rng.choice(users).unlink()
    elif choice == 2:
        (root / f"content/users/added-{step}.yaml").write_text(USER.format(
            slug=f"added-{step}", name=f"Added {step}", year=step % 20, month=1, day=1, bio="New."))
    elif choice == 3:  # a template every page uses
        base = root / "templates/base.html"
        base.write_text(base.read_text().replace("</footer>", f"<!-- {step} --></footer>", 1))
    else:
        css = root / "static/styles/site.css"
        css.write_text(css.read_text() + f"\n/* {step} */\n")


SLOW_MOVES = """
import os, sys, time
real_replace = os.replace
def replace(source, target, **options):
    time.sleep(0.003)
    return real_replace(source, target, **options)
os.replace = replace
sys.argv = ["site.py", "--root", sys.argv[1], "freeze"]
from sitegen.cli import main
main()
"""


def start_freeze(root: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", SLOW_MOVES, str(root)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_for_the_commit(freeze: subprocess.Popen, dest: Path) -> None:
    """Until the freeze starts moving pages into the empty ``dest``, or ends."""
    while freeze.poll() is None and not any(entry.name != MARKER for entry in dest.iterdir()):
        time.sleep(0.005)


def test_killed_freezes_recover_to_a_clean_build(make_project, tmp_path):
    root = make_project()
    add_users(root, 200)
    dest = root / "build"
    dest.mkdir()  # the first freeze goes into an existing empty folder
    rng = random.Random(SEED)
    started = time.monotonic()
    for step in range(KILLS):
        if step:
            random_edit(root, rng, step)
        freeze = start_freeze(root)
        if step == 0:  # a first freeze into an empty folder, killed while it moves pages in
            wait_for_the_commit(freeze, dest)
            time.sleep(rng.uniform(0, 0.5))
        else:
            time.sleep(rng.uniform(0.1, 1.2))
        freeze.send_signal(signal.SIGKILL)
        _, errors = freeze.communicate(timeout=60)
        assert b"Traceback" not in errors, errors.decode()
        if step == KILLS // 2:  # half-way, a freeze that runs to its end gives a clean build
            freeze_site(root, dest)
            assert snapshot(dest) == clean_copy(root, tmp_path, "half-way")
    done = subprocess.run([sys.executable, str(EXAMPLE / "site.py"), "--root", str(root), "freeze"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert snapshot(dest) == clean_copy(root, tmp_path, "end")
    assert time.monotonic() - started < 60


def children_of(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as children:
            return [int(child) for child in children.read().split()]
    except FileNotFoundError:
        return []


def ended(pid: int) -> bool:
    """Gone, or a zombie that no one has reaped yet."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] == "Z"
    except FileNotFoundError:
        return True


def start_parallel_freeze(root: Path, **options) -> subprocess.Popen:
    """``python site.py freeze --jobs 2``: the freeze, two record workers and the listing pages' one."""
    return subprocess.Popen([sys.executable, str(EXAMPLE / "site.py"), "--root", str(root), "freeze", "--jobs", "2"],
                            text=True, **options)


def workers_once(freeze: subprocess.Popen, ready) -> list[int]:
    """The freeze's workers once ``ready()`` (or once it ended)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and freeze.poll() is None and not ready():
        time.sleep(0.002)
    return children_of(freeze.pid)


def rendering(root: Path):
    """Whether the workers render pages: a hundred staged already."""
    staged = root / ".build.state/next/tree/users"
    return lambda: staged.is_dir() and len(os.listdir(staged)) > 100


def left_running(workers: list[int]) -> list[int]:
    """The workers that did not end within 20 s, killed so that no test leaves one behind."""
    deadline = time.monotonic() + 20
    while not all(map(ended, workers)) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = [pid for pid in workers if not ended(pid)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    return left


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="finds the workers in /proc")
def test_the_workers_of_a_killed_freeze_end_too_and_quietly(make_project, tmp_path):
    root = make_project()
    add_users(root, 3000)
    errors = tmp_path / "stderr"
    with open(errors, "w") as stderr:
        freeze = start_parallel_freeze(root, stdout=subprocess.DEVNULL, stderr=stderr)
    workers = workers_once(freeze, rendering(root))
    freeze.send_signal(signal.SIGKILL)
    freeze.wait()
    assert len(workers) == 3 and not left_running(workers)
    assert "Traceback" not in errors.read_text()


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="finds the workers in /proc")
@pytest.mark.parametrize("moment", ["while the workers wait", "while they render"])
def test_ctrl_c_ends_the_freeze_and_its_workers_with_one_word(make_project, moment):
    """A terminal's Ctrl-C is a SIGINT to every process of its group: the workers' too."""
    root = make_project()
    add_users(root, 3000)
    freeze = start_parallel_freeze(root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    forked = rendering(root) if moment == "while they render" else lambda: True
    workers = workers_once(freeze, lambda: len(children_of(freeze.pid)) == 3 and forked())
    os.killpg(freeze.pid, signal.SIGINT)
    _, errors = freeze.communicate(timeout=60)
    assert (freeze.returncode, errors.strip(), len(workers)) == (1, "Aborted!", 3)
    assert not left_running(workers)
    assert not (root / "build").exists() and not (root / ".build.state").exists()


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="finds the workers in /proc")
def test_sigterm_ends_the_freeze_as_ctrl_c_does_with_its_usual_status(make_project):
    root = make_project()
    add_users(root, 3000)
    freeze = start_parallel_freeze(root, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    workers = workers_once(freeze, lambda: len(children_of(freeze.pid)) >= 3)
    freeze.send_signal(signal.SIGTERM)  # to the freeze alone, as a service manager or `kill` sends it
    out, errors = freeze.communicate(timeout=60)
    assert (freeze.returncode, out, errors, len(workers)) == (128 + signal.SIGTERM, "", "", 3)
    assert not left_running(workers)
    assert not (root / "build").exists() and not (root / ".build.state").exists()
