"""Mutated content files never crash or hang a freeze: each failure is one line naming the file, and
build/ stays as it was.

Seeded and bounded: the same mutations every run, a few seconds in all.
"""

from __future__ import annotations

import random
import re
import signal

from click.testing import CliRunner

from sitegen.cli import main
from sitegen.freeze import freeze_site
from support import snapshot

SEED, MUTATIONS, SECONDS_PER_FREEZE = 20261202, 120, 20
FILES = ["content/users/ada-lovelace.yaml", "content/users/alan-turing.yaml", "content/stores/london.yaml",
         "content/users/grace-hopper.yaml", "content/stores/tokyo.yaml",
         "content/site.yaml"]
TOKENS = ["&a ", "*a", "<<: {x: 1}\n", "!!int ", "!!float ", "!!bool ", "!!timestamp ", "!!binary ", "!!str ",
          "!!python/object:os.system ", "? ", ": ", "- ", "[", "]", "{", "}", ",", "#", "|", ">", "'", '"',
          "\t", "\n", "  ", "~", "null", "2024-02-30", "0x1F", "1e999", "9" * 5000, "[a]: x\n",
          "%YAML 1.1\n", "---\n", "...\n", "\\u0000", "\ufeff", "\u2028", "\x85"]
CONTROL = [bytes([code]) for code in (*range(0, 9), 11, 12, *range(14, 32), 127)]


def mutate(data: bytes, rng: random.Random) -> bytes:
    kind = rng.randrange(6)
    where = rng.randrange(len(data) + 1)
    if kind == 0 and data:  # flip a byte
        index = rng.randrange(len(data))
        return data[:index] + bytes([data[index] ^ (1 << rng.randrange(8))]) + data[index + 1:]
    if kind == 1:  # truncate
        return data[:where]
    if kind == 2:  # a YAML token
        return data[:where] + rng.choice(TOKENS).encode() + data[where:]
    if kind == 3:  # a control character
        return data[:where] + rng.choice(CONTROL) + data[where:]
    if kind == 4:  # a tag on a value
        return re.sub(rb": ", b": " + rng.choice(TOKENS[3:9]).encode(), data, count=1 + rng.randrange(3))
    lines = data.split(b"\n")  # duplicate or drop a line
    line = rng.randrange(len(lines))
    lines[line:line + 1] = [] if rng.random() < 0.5 else [lines[line]] * 2
    return b"\n".join(lines)


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang("a freeze took over %d s" % SECONDS_PER_FREEZE)


def test_mutated_content_fails_in_one_line_per_problem_and_keeps_the_build(make_project):
    root = make_project()
    freeze_site(root, root / "build")
    originals = {name: (root / name).read_bytes() for name in FILES}
    rng, runner = random.Random(SEED), CliRunner()
    failures = 0
    before, state = snapshot(root / "build"), snapshot(root / ".build.state")  # as of the last success
    previous = signal.signal(signal.SIGALRM, _alarm)
    try:
        for _ in range(MUTATIONS):
            name = rng.choice(FILES)
            mutated = mutate(originals[name], rng)
            (root / name).write_bytes(mutated)
            signal.alarm(SECONDS_PER_FREEZE)
            result = runner.invoke(main, ["--root", str(root), "freeze", "--jobs", "1"])
            signal.alarm(0)
            context = f"{name} mutated to {mutated[:300]!r}:\n{result.output}"
            assert result.exit_code in (0, 1), context + repr(result.exception)
            assert "Traceback" not in result.output, context
            if result.exit_code == 1:
                failures += 1
                lines = result.output.splitlines()
                assert lines and all(re.match(re.escape(name) + r":\d+:\d+: \S", line) for line in lines), context
                assert snapshot(root / "build") == before, context
                assert snapshot(root / ".build.state") == state, context
            else:
                before, state = snapshot(root / "build"), snapshot(root / ".build.state")
            (root / name).write_bytes(originals[name])
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert failures > MUTATIONS // 3  # the mutations do break things
