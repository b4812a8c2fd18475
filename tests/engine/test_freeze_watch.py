"""``freeze --watch``: freezing on every save, handing plain freezes over to it, the barrier, restarts, Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import REPO, parse_html

from sitegen.freeze import freeze_site
from sitegen.freeze.delegate import PROTOCOL, socket_path
from sitegen.freeze.incremental import fingerprint
from sitegen.testing import snapshot

LINE = re.compile(r"Froze (\d+) pages into (.+) in [0-9.]+ s \((\d+) rendered, (\d+) removed\)\Z")
ADA = "content/users/ada-lovelace.yaml"


def client(root: Path, *args: str, timeout: float = 60) -> tuple[subprocess.CompletedProcess, set[str]]:
    """A plain ``python site.py --root ROOT freeze``, and the modules it imported (its -X importtime lines,
    taken out of its stderr)."""
    done = subprocess.run([sys.executable, "-X", "importtime", str(REPO / "site.py"), "--root", str(root), "freeze",
                           *args], capture_output=True, text=True, timeout=timeout)
    imported = {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    done.stderr = "".join(line + "\n" for line in done.stderr.splitlines() if not line.startswith("import time:"))
    return done, imported - {"imported package"}


def handed_over(imported: set[str]) -> bool:
    """Whether a client gave its freeze to the watcher: a freeze of its own shows its lines through console."""
    return "sitegen.freeze.console" not in imported


def set_name(root: Path, name: str, *, replace: bool = False) -> None:
    """Rename Ada, writing her file in place or, as many editors save, beside it and renamed over it."""
    path = root / ADA
    text = re.sub(r"(?m)^name: .*$", f"name: {name}", path.read_text())
    if replace:
        path.with_name(".ada.tmp").write_text(text)
        os.replace(path.with_name(".ada.tmp"), path)
    else:
        path.write_text(text)


def heading(build: Path, page: str) -> str:
    return parse_html((build / page / "index.html").read_bytes()).h1.get_text(strip=True)


def froze(watcher, count: int) -> None:
    """Wait until the watcher has printed ``count`` freeze lines in all."""
    watcher.wait_for(lambda: sum(bool(LINE.match(line)) for line in watcher.out) >= count, f"{count} freezes")


def test_the_watcher_freezes_each_save(make_project, watch_freeze):
    root = make_project()
    watcher = watch_freeze(root)
    first = LINE.match(watcher.out[0])
    assert first and first.group(2) == str(root / "build") and first.group(3) == first.group(1)
    set_name(root, "Ada King")
    froze(watcher, 2)
    assert LINE.match(watcher.out[1]).group(3) != "0"
    assert heading(root / "build", "users/ada-lovelace") == "Ada King"
    (root / "content/users/ada-lovelace.yaml.swp").write_text("an editor's swap file")  # starts no freeze
    set_name(root, "Ada Byron", replace=True)
    froze(watcher, 3)
    assert heading(root / "build", "users/ada-lovelace") == "Ada Byron"
    assert snapshot(root / "build") == snapshot(clean_freeze(root))


def test_a_folder_moved_away_and_back_is_frozen_with_nothing_from_watchdog_on_the_terminal(
        make_project, watch_freeze, tmp_path):
    root = make_project()
    watcher = watch_freeze(root)
    (root / "content/users").rename(tmp_path / "users")
    froze(watcher, 2)
    time.sleep(0.5)
    (tmp_path / "users").rename(root / "content/users")
    froze(watcher, 3)
    handed, _ = client(root)  # passes the barrier: whatever watchdog said has been heard
    assert handed.returncode == 0
    assert [line for line in watcher.err if not line.startswith("Watching ")] == []
    assert snapshot(root / "build") == snapshot(clean_freeze(root))


@pytest.mark.parametrize("meanwhile", ["the fix", "an editor's swap file"])
def test_a_failure_overtaken_by_a_save_is_not_shown_and_the_next_freeze_follows(make_project, watch_freeze,
                                                                                 meanwhile):
    """Fixed while the freeze that finds it runs: the error it would print is already out of date.
    A swap file starts no freeze: the error stands, and is shown."""
    root = make_project()
    site_py = root / "site.py"  # profile pages that take a while: the fix lands while they render
    site_py.write_text(site_py.read_text().replace(
        '    """Up to two initials for a name\'s avatar: \'Guido van Rossum\' -> \'GR\'."""\n',
        '    """Up to two initials for a name\'s avatar: \'Guido van Rossum\' -> \'GR\'."""\n'
        '    __import__("time").sleep(0.05)\n'))
    watcher = watch_freeze(root)
    ada = root / ADA
    good = ada.read_text()
    base = root / "templates/base.html"
    base.write_text(base.read_text().replace("</footer>", "<!-- every page again --></footer>"))
    ada.write_text(good.replace("bio: ", "bio: See [the notes](/nowhere/). ", 1))  # a link to no page
    time.sleep(0.2)  # the freeze has started and renders the profiles
    if meanwhile == "an editor's swap file":
        (root / "content/users/.ada-lovelace.yaml.swp").write_text("swap")
        watcher.wait_for(lambda: any("nowhere" in line for line in watcher.err), "the error")
        ada.write_text(good)
    else:
        ada.write_text(good)
    froze(watcher, 2)
    assert len([line for line in watcher.err if "nowhere" in line]) == (meanwhile != "the fix")
    assert snapshot(root / "build") == snapshot(clean_freeze(root))


def test_a_static_file_in_a_folder_other_tools_use_is_frozen_as_it_is_saved(make_project, watch_freeze):
    root = make_project()
    watcher = watch_freeze(root)
    (root / "static/build").mkdir()
    (root / "static/build/app.js").write_text("let version = 1;")
    froze(watcher, 2)
    (root / "static/build/app.js").write_text("let version = 2;")
    watcher.wait_for(lambda: (root / "build/static/build/app.js").is_file()
                     and (root / "build/static/build/app.js").read_text() == "let version = 2;", "the second save")
    assert snapshot(root / "build") == snapshot(clean_freeze(root))


def clean_freeze(root: Path) -> Path:
    dest = root.parent / "clean" / "build"
    freeze_site(root, dest, clean=True, jobs=1)
    return dest


def test_bad_content_is_one_line_and_watching_goes_on(make_project, watch_freeze):
    root = make_project()
    watcher = watch_freeze(root)
    (root / ADA).write_text("name: [unclosed\n")
    watcher.wait_for(lambda: any(line.startswith(ADA + ":") for line in watcher.err), "the error")
    assert not any("Traceback" in line for line in watcher.err)
    assert [line for line in watcher.err if not line.startswith("Watching ")] == [
        line for line in watcher.err if line.startswith(ADA + ":")]
    done, imported = client(root)
    assert (done.returncode, done.stdout) == (1, "") and handed_over(imported)
    assert done.stderr.splitlines() == [line for line in watcher.err if line.startswith(ADA + ":")][:1]
    (root / ADA).write_text("name: Ada Again\njoined: 1815-12-10\n")
    froze(watcher, 2)
    assert heading(root / "build", "users/ada-lovelace") == "Ada Again"


def test_a_handed_over_freeze_says_and_makes_what_a_cold_freeze_does(make_project, watch_freeze, tmp_path):
    root = make_project()
    twin = make_project_copy(root, tmp_path / "twin")
    watcher = watch_freeze(root)
    for project in (root, twin):
        set_name(project, "Countess of Lovelace")
        (project / "content/users/mary-somerville.yaml").write_text("name: Mary Somerville\njoined: 1826-01-01\n")
        (project / "content/users/alan-turing.yaml").unlink()
    froze(watcher, 2)
    handed, imported = client(root)
    assert handed_over(imported)
    freeze_site(twin, twin / "build")  # the twin's freeze of the same edits, then its freeze with nothing to do
    cold, imported = client(twin)
    assert not handed_over(imported)
    assert (handed.returncode, handed.stderr) == (cold.returncode, cold.stderr) == (0, "")
    shown, expected = LINE.match(handed.stdout.strip()), LINE.match(cold.stdout.strip())
    assert shown.group(1, 3, 4) == expected.group(1, 3, 4) == (expected.group(1), "0", "0")
    assert shown.group(2) == str(root / "build")
    assert snapshot(root / "build") == snapshot(twin / "build")
    assert heading(root / "build", "users/mary-somerville") == "Mary Somerville"


def test_a_handed_over_freeze_scans_a_tree_that_is_a_link_as_a_cold_freeze_does(make_project, watch_freeze):
    """No event comes from inside a linked tree (it is not watched): the watcher cannot vouch for its scan."""
    root = make_project()
    (root / "static").rename(root / "static-real")
    (root / "static").symlink_to("static-real")
    watcher = watch_freeze(root)
    froze(watcher, 1)
    stylesheet = root / "static/styles/site.css"
    stylesheet.write_text(stylesheet.read_text() + "\n/* edited */\n")
    handed, imported = client(root)
    assert handed_over(imported)
    assert (handed.returncode, handed.stderr, LINE.match(handed.stdout.strip()).group(3)) == (0, "", "1")
    assert (root / "build/static/styles/site.css").read_bytes() == stylesheet.read_bytes()


def make_project_copy(root: Path, copy: Path) -> Path:
    import shutil

    shutil.copytree(root, copy)
    return copy


def test_a_save_made_just_before_a_freeze_is_asked_for_is_in_that_freeze(make_project, watch_freeze, tmp_path):
    """The barrier. The request is sent microseconds after the write, on a connection the watcher has
    already accepted (it waits for the request), so its file events cannot have come through yet."""
    root = make_project()
    watch_freeze(root)
    request = json.dumps({"protocol": PROTOCOL, "root": str(root),
                          "fingerprint": fingerprint(root, None).hex()}).encode()
    output = tmp_path / "output"
    with open(output, "w") as out:
        for step in range(40):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
                connection.connect(str(socket_path(root / "build")))
                time.sleep(0.005)  # the watcher accepts, and waits for the request
                set_name(root, f"Ada Step {step}", replace=step % 2 == 1)
                if step % 5 == 0:
                    (root / f"content/users/new-{step}.yaml").write_text(f"name: New {step}\njoined: 2020-01-01\n")
                socket.send_fds(connection, [request], [out.fileno(), out.fileno()])
                assert json.loads(connection.makefile().readline()) == {"status": "done", "exit": 0}
            assert heading(root / "build", "users/ada-lovelace") == f"Ada Step {step}", step
            if step % 5 == 0:
                assert heading(root / "build", f"users/new-{step}") == f"New {step}"
    lines = output.read_text().splitlines()
    assert len(lines) == 40 and all(LINE.match(line) for line in lines)
    assert snapshot(root / "build") == snapshot(clean_freeze(root))


def test_a_stale_socket_means_a_cold_freeze_and_goes(make_project):
    root = make_project()
    path = socket_path(root / "build")
    path.parent.mkdir(mode=0o700)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(str(path))  # and closed without a listen: what a killed watcher leaves
    done, imported = client(root)
    assert done.returncode == 0 and not handed_over(imported)
    assert LINE.match(done.stdout.strip()).group(3) == "32"
    assert not path.exists()


def test_the_processes_the_watcher_forks_do_not_hold_its_socket(tmp_path):
    """Workers left running by a killed watcher kept it listening: the next client could not tell it was stale."""
    from sitegen.freeze.delegate import WatchSocket

    listening = WatchSocket(tmp_path / "build")
    try:
        number, identity = listening.fileno(), os.fstat(listening.fileno()).st_ino
        child = os.fork()
        if child == 0:  # the forked copy of this process
            try:
                held = os.fstat(number).st_ino == identity
            except OSError:
                held = False
            os._exit(1 if held else 0)
        assert os.waitpid(child, 0)[1] == 0
    finally:
        listening.close()


def test_other_options_or_clean_freeze_cold_beside_the_watcher(make_project, watch_freeze):
    root = make_project()
    watch_freeze(root)
    done, imported = client(root, "--clean")
    assert done.returncode == 0 and not handed_over(imported) and LINE.match(done.stdout.strip()).group(3) == "32"
    done, imported = client(root, "--base-url", "https://example.org/other/")
    assert done.returncode == 0 and not handed_over(imported)
    done, imported = client(root)  # the state is another's now: the watcher renders for its own base URL again
    assert done.returncode == 0 and handed_over(imported) and LINE.match(done.stdout.strip()).group(3) == "32"


def test_a_change_to_site_py_restarts_the_watcher_on_the_new_code(make_project, watch_freeze):
    root = make_project()
    watcher = watch_freeze(root)
    site_py = root / "site.py"
    original = site_py.read_text()
    site_py.write_text(original + "\nundefined_name\n")
    watcher.wait_for(lambda: any("NameError" in line for line in watcher.err), "the error in site.py")
    assert [line for line in watcher.err if "NameError" in line] == [
        f"site.py:{original.count(chr(10)) + 2}: NameError: name 'undefined_name' is not defined"]
    done, imported = client(root)
    assert done.returncode == 1  # the site does not load: a cold freeze would fail as well
    site_py.write_text(original.replace('return "".join(word[0]', 'return "~" + "".join(word[0]'))
    watcher.wait_for(lambda: watcher.watching() == 2, "the restart")
    froze(watcher, 2)
    assert LINE.match(watcher.out[1]).group(3) == "32"  # the new code renders every page
    avatar = parse_html((root / "build/users/ada-lovelace/index.html").read_bytes()).select_one(".avatar")
    assert avatar.get_text(strip=True) == "~AL"
    assert watcher.process.poll() is None  # the same process, re-executed
    done, imported = client(root)
    assert done.returncode == 0 and handed_over(imported)


def test_ctrl_c_ends_the_watcher_quietly_and_takes_everything_with_it(make_project, watch_freeze):
    root = make_project()
    watcher = watch_freeze(root)
    pid = watcher.process.pid
    children = [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    assert children and socket_path(root / "build").exists()
    assert watcher.interrupt() == 0
    assert watcher.out == [watcher.out[0]] and [line for line in watcher.err if not line.startswith("Watching")] == []
    assert not socket_path(root / "build").exists()
    deadline = time.monotonic() + 5
    while any(Path(f"/proc/{child}").exists() for child in children) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not any(Path(f"/proc/{child}").exists() for child in children)
    done, imported = client(root)
    assert done.returncode == 0 and not handed_over(imported)


def test_handing_over_imports_neither_flask_nor_click(make_project, watch_freeze):
    root = make_project()
    watch_freeze(root)
    set_name(root, "Ada Quick")
    done, imported = client(root)
    assert done.returncode == 0 and handed_over(imported)
    assert not imported & {"flask", "flask_frozen", "jinja2", "werkzeug", "click", "watchdog", "yaml", "pydantic"}


def test_a_big_change_renders_in_worker_processes_forked_from_the_watcher(make_project, watch_freeze):
    root = make_project()
    for number in range(80):
        (root / f"content/users/extra-{number:02d}.yaml").write_text(f"name: Extra {number}\njoined: 2021-01-01\n")
    watcher = watch_freeze(root, "--jobs", "2")
    profile = root / "templates/profile.html"
    profile.write_text(profile.read_text().replace('<article class="profile">', '<article class="profile edited">'))
    froze(watcher, 2)
    assert int(LINE.match(watcher.out[1]).group(3)) >= 93  # every profile: more than a process renders alone
    assert snapshot(root / "build") == snapshot(clean_freeze(root))


def test_a_second_watcher_of_the_same_build_is_refused(make_project, watch_freeze):
    root = make_project()
    watch_freeze(root)
    done = subprocess.run([sys.executable, str(REPO / "site.py"), "--root", str(root), "freeze", "--watch"],
                          capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == f"another `freeze --watch` is already freezing into {root / 'build'}\n"


def test_sigterm_stops_the_watcher_as_ctrl_c_does(make_project, watch_freeze):
    root = make_project()
    watcher = watch_freeze(root)
    watcher.process.send_signal(signal.SIGTERM)
    assert watcher.process.wait(30) == 0
    assert not socket_path(root / "build").exists()


def test_the_watcher_imports_neither_tornado_nor_livereload(make_project):
    root = make_project()
    process = subprocess.Popen([sys.executable, "-X", "importtime", str(REPO / "site.py"), "--root", str(root),
                                "freeze", "--watch"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not socket_path(root / "build").exists() or not (root / "build").exists():
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        set_name(root, "Ada Imported")  # a freeze that renders, in the watcher and with its event process
        done, _ = client(root)
        assert done.returncode == 0
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    imported = {line.rsplit("|", 1)[1].strip() for line in err.splitlines() if line.startswith("import time:")}
    assert {"flask", "watchdog"} <= imported
    assert not {name for name in imported if name.split(".")[0] in ("tornado", "livereload")}


def test_a_client_gone_before_its_answer_does_not_stop_the_watcher(make_project, watch_freeze):
    root = make_project()
    watcher = watch_freeze(root)
    request = json.dumps({"protocol": PROTOCOL, "root": str(root),
                          "fingerprint": fingerprint(root, None).hex()}).encode()
    read_end, write_end = os.pipe()
    os.close(read_end)  # whatever the watcher writes there fails with EPIPE
    set_name(root, "Ada Unread")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.connect(str(socket_path(root / "build")))
        socket.send_fds(connection, [request], [write_end, write_end])
        os.close(write_end)
        assert json.loads(connection.makefile().readline()) == {"status": "done", "exit": 0}
    assert watcher.process.poll() is None and not any("Traceback" in line for line in watcher.err)
    done, imported = client(root)
    assert done.returncode == 0 and handed_over(imported) and LINE.match(done.stdout.strip())
    assert heading(root / "build", "users/ada-lovelace") == "Ada Unread"


def test_a_stopped_watcher_makes_a_plain_freeze_freeze_cold_not_wait(make_project, watch_freeze, tmp_path):
    root = make_project()
    watcher = watch_freeze(root)
    watcher.process.send_signal(signal.SIGSTOP)  # Ctrl-Z in the watcher's terminal
    try:
        set_name(root, "Ada Paused")
        output = tmp_path / "client-output"
        with open(output, "w") as out:  # a file, to see whether the watcher writes into it once resumed
            started = time.monotonic()
            done = subprocess.run([sys.executable, str(REPO / "site.py"), "--root", str(root), "freeze"],
                                  stdout=out, stderr=subprocess.STDOUT, timeout=60)
        assert done.returncode == 0 and time.monotonic() - started < 30
        assert heading(root / "build", "users/ada-lovelace") == "Ada Paused"
    finally:
        watcher.process.send_signal(signal.SIGCONT)
    (lines,) = output.read_text().splitlines()  # the cold freeze's line, and nothing else
    assert LINE.match(lines)
    set_name(root, "Ada Resumed")  # the watcher, resumed, dropped the request and goes on
    done, imported = client(root)
    assert done.returncode == 0 and handed_over(imported), done.stderr
    assert heading(root / "build", "users/ada-lovelace") == "Ada Resumed"
    assert output.read_text().splitlines() == [lines]
