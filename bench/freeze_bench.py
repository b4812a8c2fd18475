"""Freeze benchmark: `python site.py freeze` against stock Frozen-Flask, Hugo and two Jinja-only floors.

    python bench/freeze_bench.py                          # 10,000 users, 100 stores, 3 rounds
    python bench/freeze_bench.py --users 1000 10000 --rounds 5
    python bench/freeze_bench.py --no-peers               # without ../shared/peers
    python bench/freeze_bench.py --users 1000000 --rounds 1 --work /var/tmp \
        --runs own-floor,clean,bio-edit,name-edit,nothing

For each size it generates, outside the timed runs, a project of N users and
100 stores from this site's site.py, templates and static files (bench/make_site.py),
and the peers' content for the same N users and 100 stores (../shared/peers
gen_content.py, then hugo_peer/prep_content.py for Hugo; the preparation is
not timed, as in the peers' README). Then, round after round, it runs each of
these as its own process, in this order, every cold build into a fresh folder:

  stock       Frozen-Flask as a stock user would run it on this site: the site's own
              app, create_app(load_site(root), load_content(site)), Freezer(app) with
              its default configuration (only the site's STATIC_IGNORE shared, as
              tests/engine/test_freeze_fidelity.py does), the engine's URL generators,
              one process, PyYAML's pure-Python loader (what yaml.safe_load parses with)
  stock-c     the same, with libyaml's C loader (as the engine itself reads YAML)
  hugo        Hugo on ../shared/peers/hugo_peer (simpler templates, no listing pages)
  floor       ../shared/peers render_only.py: C loader, 2 processes, Jinja and write
              only (the peers' `jinja-c-j2`)
  own-floor   bench/own_floor.py: this site's own pages, the same bytes as the freeze's,
              from plain Jinja and the C loader in --jobs processes, no Flask
  clean-jN    python site.py freeze --jobs N into a fresh folder (no state), once for
              each N of --jobs (default 1 and 2)
  bio-edit    python site.py freeze after changing one user's bio (that profile only)
  name-edit   python site.py freeze after changing one user's name (the profile and
              the /users/ listing page that shows the name)
  nothing     python site.py freeze with nothing changed
  template-edit
              python site.py freeze after a change to templates/base.html, which every
              page extends: every page rendered again into the existing build (what
              freeze --clean on an existing build does too)
  watch-bio-edit, watch-name-edit, watch-nothing
              the same three, with `python site.py freeze --watch` running on the build
              (started, untimed, after the other runs of every round): the plain freeze
              hands its work to the watcher, which keeps the libraries, the scan and the
              state warm (docs/speed.md, "A watching freeze"); the watcher may have frozen
              the edit on its own before the request comes, the request then waits for it;
              their peak RSS is the plain freeze's alone (the watcher's is printed apart)

--runs chooses among them (`clean` stands for every clean-jN). Above 100,000
users the stock runs are left out unless --runs names them: they would take
most of an hour at 1,000,000. The own floor and the freezes other than
clean-jN run with the largest --jobs.

It prints, per run kind, the median wall time of the whole process (Python
start-up included), its min-max, the time the command reports for itself,
the files written per second, peak memory (the RSS of the process and all
its children, summed while it runs, so pages shared after a fork count
twice; "-" when every run ended before its first sample) and the speed-up
over stock, Hugo and the two floors: in each round, their time divided by
this one (above 1 is faster), then the median over rounds, so that a round
slowed by other work on the machine slows both sides of a ratio. It checks
that the stock and own-floor builds of the first round hold the same bytes
as the clean one. Nothing is deleted until the end, but
from 100,000 users on, where the builds would fill the memory that /dev/shm
lives in, each round's cold builds are deleted after the round, with a pause
before the next (see --work). Given several sizes, it ends with how each
run's median time grew from one size to the next against the files it wrote:
at a million users, compare the freeze's growth with the own floor's, which
writes the same bytes, since this machine's cost per written byte grows too.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_site import make_site, user_slug, user_yaml  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
PEERS = REPO.parent / "shared" / "peers"  # ../shared/peers: run from there, never copied into the repo
# Memory is sampled this often: often enough to catch each worker's peak, and
# rarely enough that the sampling itself does not take CPU from a 2-core freeze.
SAMPLE_SECONDS = 0.05
RUNS = ("stock", "stock-c", "hugo", "floor", "own-floor", "clean", "bio-edit", "name-edit", "nothing",
        "template-edit", "watch-bio-edit", "watch-name-edit", "watch-nothing")
PEER_RUNS = ("hugo", "floor")
STOCK_RUNS = ("stock", "stock-c")
INCREMENTAL = ("bio-edit", "name-edit", "nothing", "template-edit")
WATCHED = ("watch-bio-edit", "watch-name-edit", "watch-nothing")
REFERENCES = ("stock", "hugo", "floor", "own-floor")  # the ratio columns
# Above this many users the stock runs are left out unless asked for: about 30 minutes each at 1,000,000.
STOCK_MAX_USERS = 100_000
# From this many users on, each round's cold builds are deleted after the round: /dev/shm is memory,
# and a build takes about 0.5 GB at 100,000 users (21 of them in 3 rounds), 5 GB at 1,000,000.
DELETE_FROM_USERS = 100_000
# After deleting many files, creating files is slow on these VMs for about a minute (../shared/peers README).
PAUSE_AFTER_DELETE = 60
STOCK = """
import sys, time
started = time.perf_counter()
root, dest, loader = sys.argv[1:4]
import yaml
if loader == "pure-python":  # what yaml.safe_load parses with; the engine takes CSafeLoader when it exists
    del yaml.CSafeLoader
sys.path.insert(0, {repo!r})
import warnings
from pathlib import Path
from flask_frozen import Freezer
from sitegen.app import create_app
from sitegen.content.loader import load_content
from sitegen.freeze.render import STATIC_IGNORE, register_generators
from sitegen.site import load_site
site = load_site(Path(root))
content = load_content(site)
app = create_app(site, content, config={{"FREEZER_DESTINATION": dest, "FREEZER_STATIC_IGNORE": STATIC_IGNORE}})
app.config["FREEZER_BASE_URL"] = app.config["SITE_BASE_URL"]
freezer = Freezer(app)
register_generators(freezer, {{name: list(records) for name, records in content.collections.items()}})
with warnings.catch_warnings():  # the sitemap's parts: none for a site under 50,000 pages
    warnings.filterwarnings("ignore", "Nothing frozen for endpoints sitegen.sitemap_part")
    urls = freezer.freeze()
print(f"Froze {{len(urls)}} pages in {{time.perf_counter() - started:.3f}} s")
"""


# Compiles, untimed, the modules the runs import into the bytecode cache of CHILD_ENV.
WARM_UP = ("import sys; sys.path.insert(0, sys.argv[1]); import flask_frozen, jinja2, markdown_it, multiprocessing, "
           "pydantic, yaml, sitegen.app, sitegen.content.loader, sitegen.freeze.render, sitegen.live.views")


def tree_rss(pid: int) -> int:
    """Resident memory of a process and all its descendants, in bytes."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            with open(f"/proc/{current}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
                        break
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as children:
                    pending += [int(child) for child in children.read().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


# Child processes keep their bytecode, as on a developer's machine (this VM sets
# PYTHONDONTWRITEBYTECODE, which makes every run compile the engine's modules
# again); set in main(), in a folder of the work directory.
CHILD_ENV = dict(os.environ)


def run(command: list[str]) -> tuple[float, int, float | None, int | None]:
    """Wall seconds, peak summed RSS, and what the command reports, if it does: its own seconds ("in X s")
    and the pages it rendered ("(N rendered")."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=CHILD_ENV)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, tree_rss(process.pid))
            done.wait(SAMPLE_SECONDS)

    sampler = threading.Thread(target=sample)
    sampler.start()
    out, err = process.communicate()
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    if process.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{out}{err}")
    own, rendered = re.search(r"\bin ([0-9.]+) s\b", out), re.search(r"\((\d+) rendered", out)
    return seconds, peak, float(own.group(1)) if own else None, int(rendered.group(1)) if rendered else None


def count_files(folder: Path) -> int:
    """Files in a build, leaving out the freeze's hidden marker."""
    return sum(len([name for name in files if not name.startswith(".")]) for _, _, files in os.walk(folder))


def freeze_command(root: Path, dest: Path, jobs: int) -> list[str]:
    return [sys.executable, str(REPO / "site.py"), "--root", str(root), "freeze", "--dest", str(dest),
            "--jobs", str(jobs)]


def check_peers(hugo: bool) -> None:
    needed = [PEERS / "gen_content.py", PEERS / "render_only.py", PEERS / "hugo_peer" / "prep_content.py"]
    missing = [path for path in needed if not path.is_file()]
    if missing:
        raise SystemExit(f"freeze_bench: the peers are not at {PEERS} (../shared/peers beside the repo; "
                         f"missing {missing[0].name}); run with --no-peers to leave Hugo and the floor out")
    if hugo and not shutil.which("hugo"):
        raise SystemExit("freeze_bench: no `hugo` on PATH (Debian: apt-get install hugo); "
                         "run with --no-peers to leave Hugo and the floor out")


def prepare_peers(work: Path, users: int, stores: int) -> tuple[Path, Path, Path]:
    """The peers' content for this size, and a writable copy of the Hugo site (Hugo writes into its source)."""
    content, hugo_content, hugo_site = work / f"peer-content-{users}", work / f"hugo-content-{users}", work / "hugo_peer"
    subprocess.run([sys.executable, str(PEERS / "gen_content.py"), str(users), str(stores), str(content)],
                   check=True, env=CHILD_ENV)
    subprocess.run([sys.executable, str(PEERS / "hugo_peer" / "prep_content.py"), str(content), str(hugo_content)],
                   check=True, env=CHILD_ENV)
    if not hugo_site.exists():
        shutil.copytree(PEERS / "hugo_peer", hugo_site, ignore=shutil.ignore_patterns("resources", ".hugo_build.lock"))
        for folder, _, _ in os.walk(hugo_site):
            os.chmod(folder, 0o755)
    return content, hugo_content, hugo_site


def edit(site: Path, users: int, number: int, **change: str) -> None:
    """Rewrite one user's file; never one of the first six, whom the home page shows."""
    number = 6 + number % (users - 6)
    (site / "content" / "users" / f"{user_slug(number, users)}.yaml").write_text(user_yaml(number, **change))


def runs_of(users: int, asked: list[str] | None, jobs: list[int], peers: bool) -> list[str]:
    """The runs of one size, in running order: those asked for (``clean`` is every clean-jN), or all
    but, above STOCK_MAX_USERS, the stock ones (saying so)."""
    names = set(asked or RUNS) - (set() if peers else set(PEER_RUNS))
    if asked is None and users > STOCK_MAX_USERS:
        names -= set(STOCK_RUNS)
        print(f"{users:,} users: stock and stock-c left out above {STOCK_MAX_USERS:,} users "
              "(name them in --runs to run them)")
    return [expanded for name in RUNS if name in names
            for expanded in ([f"clean-j{count}" for count in jobs] if name == "clean" else [name])]


def bench_size(users: int, stores: int, rounds: int, jobs: list[int], runs: list[str], work: Path) -> dict[str, list]:
    site = make_site(work / f"site-{users}", users, stores)
    most = max(jobs)  # for the own floor and the incremental freezes
    if any(name in PEER_RUNS for name in runs):
        peer_content, hugo_content, hugo_site = prepare_peers(work, users, stores)
    incremental = [name for name in runs if name in INCREMENTAL + WATCHED]
    incremental_dest = work / f"incremental-{users}" / "build"
    if incremental:
        subprocess.run(freeze_command(site, incremental_dest, most), check=True, capture_output=True, env=CHILD_ENV)
    subprocess.run([sys.executable, "-c", WARM_UP, str(REPO)], check=True, env=CHILD_ENV)
    if incremental:
        time.sleep(2.1)  # past the window in which just-written files are hashed again
        subprocess.run(freeze_command(site, incremental_dest, most), check=True, capture_output=True, env=CHILD_ENV)
    cold = [name for name in runs if name not in INCREMENTAL + WATCHED]
    results: dict[str, list] = {name: [] for name in runs}
    files: dict[str, int] = {}
    stock = [sys.executable, "-c", STOCK.format(repo=str(REPO)), str(site)]
    for round_number in range(rounds):
        fresh = work / f"round-{users}-{round_number}"
        commands = {
            "stock": stock + [str(fresh / "stock"), "pure-python"],
            "stock-c": stock + [str(fresh / "stock-c"), "c"],
            "own-floor": [sys.executable, str(REPO / "bench" / "own_floor.py"), str(site), str(fresh / "own-floor"),
                          "-j", str(most)],
            **{f"clean-j{count}": freeze_command(site, fresh / f"clean-j{count}", count) for count in jobs},
        }
        if "hugo" in runs:
            commands["hugo"] = ["hugo", "-s", str(hugo_site), "--contentDir", str(hugo_content),
                                "-d", str(fresh / "hugo"), "--quiet", "--noBuildLock"]
        if "floor" in runs:
            commands["floor"] = [sys.executable, str(PEERS / "render_only.py"), str(peer_content),
                                 str(fresh / "floor"), "--loader", "csafe", "-j", "2"]
        for name in cold:
            results[name].append(run(commands[name]))
            files.setdefault(name, count_files(fresh / name))
        if round_number == 0:
            check_builds(users, fresh, cold)
        edit_round(site, users, round_number, incremental_dest, most, results)
        if users >= DELETE_FROM_USERS and fresh.exists():
            shutil.rmtree(fresh)
            if round_number + 1 < rounds:
                print(f"{users:,} users: round {round_number + 1}'s builds deleted; "
                      f"waiting {PAUSE_AFTER_DELETE} s before the next round")
                time.sleep(PAUSE_AFTER_DELETE)
    if any(name in WATCHED for name in runs):
        bench_watched(site, users, rounds, incremental_dest, most, results, work)
    for name in incremental:
        files[name] = count_files(incremental_dest)
    return {name: [files[name], times] for name, times in results.items()}


def edit_round(site: Path, users: int, round_number: int, dest: Path, jobs: int, results: dict[str, list],
               prefix: str = "") -> None:
    """One round of the runs ``prefix`` + bio-edit, name-edit, nothing and template-edit: an edit, then
    a timed freeze. A different user each round, for the edit as for the name, and others for the watched
    runs (which have no template-edit)."""
    other = 994 if prefix else 0
    if prefix + "bio-edit" in results:
        edit(site, users, 1009 + other + round_number * 7919, bio=f"Edited in {prefix}round {round_number}.")
        results[prefix + "bio-edit"].append(run(freeze_command(site, dest, jobs)))
    if prefix + "name-edit" in results:
        edit(site, users, 4001 + other + round_number * 7919, name=f"Renamed In {prefix}Round {round_number}")
        results[prefix + "name-edit"].append(run(freeze_command(site, dest, jobs)))
    if prefix + "nothing" in results:
        results[prefix + "nothing"].append(run(freeze_command(site, dest, jobs)))
    if prefix + "template-edit" in results:
        base = site / "templates" / "base.html"
        marked = re.sub(r"(<!-- edited in round \d+ -->)?</body>", f"<!-- edited in round {round_number} --></body>",
                        base.read_text(), count=1)
        base.write_text(marked)
        results[prefix + "template-edit"].append(run(freeze_command(site, dest, jobs)))


def bench_watched(site: Path, users: int, rounds: int, dest: Path, jobs: int, results: dict[str, list],
                  work: Path) -> None:
    """The watch-* runs: a watcher started (untimed) on the incremental build, then in each round the
    edits of bio-edit and name-edit (other users) and nothing, each followed by a timed plain freeze."""
    log = work / f"watcher-{users}.log"
    with open(log, "w") as errors:
        watcher = subprocess.Popen(freeze_command(site, dest, jobs) + ["--watch"], stdout=subprocess.DEVNULL,
                                   stderr=errors, env=CHILD_ENV)
    try:
        while "Watching " not in log.read_text():
            if watcher.poll() is not None:
                raise SystemExit(f"freeze --watch failed:\n{log.read_text()}")
            time.sleep(0.05)
        time.sleep(2.1)  # as for the other incremental runs: past the window of just-written files
        for round_number in range(rounds):
            edit_round(site, users, round_number, dest, jobs, results, prefix="watch-")
        if watcher.poll() is not None:
            raise SystemExit(f"freeze --watch ended during the runs:\n{log.read_text()}")
        print(f"{users:,} users: the watcher's own memory (RSS, with its event process) at the end: "
              f"{tree_rss(watcher.pid) / 2**20:.0f} MB")
    finally:
        watcher.send_signal(signal.SIGTERM)  # as Ctrl-C; SIGINT is ignored where the bench runs in the background
        watcher.wait(60)


def check_builds(users: int, fresh: Path, cold: list[str]) -> None:
    """Whether the stock and own-floor builds of a round hold the clean freeze's bytes."""
    reference = next((name for name in reversed(cold) if name.startswith("clean-j")), None)
    for name in ("stock", "own-floor"):
        if reference and name in cold:
            same = compare(fresh / name, fresh / reference)
            print(f"{users:,} users: {name} and {reference} builds {'identical' if same else 'DIFFER'} "
                  "(round 1, filecmp)")


def compare(left: Path, right: Path) -> bool:
    """Whether two builds hold the same files with the same bytes (the freeze's own marker aside)."""
    def walk(folder: Path) -> set[str]:
        return {os.path.relpath(os.path.join(base, name), folder) for base, _, names in os.walk(folder)
                for name in names}

    ours = {name for name in walk(right) if not name.startswith(".")}
    if walk(left) != ours:
        return False
    _, mismatch, errors = filecmp.cmpfiles(left, right, sorted(ours), shallow=False)
    return not mismatch and not errors


def report(users: int, results: dict[str, list]) -> None:
    """A Markdown table; the ratios are medians of each round's own ratio (runs of one round saw the same load)."""
    references = [name for name in REFERENCES if name in results]
    rounds = len(next(iter(results.values()))[1])
    print(f"\n{users:,} users, medians of {rounds} rounds; load average {os.getloadavg()[0]:.2f} at the end")
    print("| " + " | ".join(["run", "wall s", "min-max", "own s", "files", "rendered", "files/s",
                             "peak RSS MB (all processes)", *(f"vs {name.replace('-', ' ')}" for name in references)])
          + " |")
    print("|---|---|---|---|---|---|---|---|" + "---|" * len(references))
    for variant, (files, runs) in results.items():
        times = [run[0] for run in runs]
        middle = statistics.median(times)
        owns = [run[2] for run in runs if run[2] is not None]
        own = f"{statistics.median(owns):.2f}" if owns else "-"
        rendered = [run[3] for run in runs if run[3] is not None]
        shown = f"{statistics.median(rendered):,.0f}" if rendered else "all"
        peak = max(run[1] for run in runs) / 2**20
        sampled = f"{peak:.0f}" if peak else "-"  # every run ended before its first sample
        ratios = [f"{statistics.median(ref[0] / run[0] for ref, run in zip(results[name][1], runs)):.2f}x"
                  for name in references]
        print("| " + " | ".join([variant, f"{middle:.2f}", f"{min(times):.2f}-{max(times):.2f}", own, f"{files:,}",
                                 shown, f"{files / middle:,.0f}", sampled, *ratios]) + " |")
    print("wall s by round: " + "; ".join(f"{variant} " + " ".join(f"{run[0]:.2f}" for run in runs)
                                          for variant, (_, runs) in results.items()))


def report_growth(smaller: int, larger: int, first: dict[str, list], second: dict[str, list]) -> None:
    """How each run's median time grew from one size to the next, against the growth of the files it wrote.

    A run whose time grows like its files' count is linear; one that grows
    faster than the own floor's, which writes the same bytes, grows by more
    than the machine's own cost of writing them (docs/speed.md, "A million pages").
    """
    print(f"\nfrom {smaller:,} to {larger:,} users")
    print("| run | files | time | time / files |")
    print("|---|---|---|---|")
    for variant in [name for name in first if name in second]:
        files = second[variant][0] / first[variant][0]
        time_grew = (statistics.median(run[0] for run in second[variant][1])
                     / statistics.median(run[0] for run in first[variant][1]))
        print(f"| {variant} | {files:.2f}x | {time_grew:.2f}x | {time_grew / files:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, nargs="+", default=[10_000], help="site sizes (default: 10000)")
    parser.add_argument("--stores", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2],
                        help="a clean freeze with each (default: 1 2); the largest for the other runs")
    parser.add_argument("--runs", type=lambda text: text.split(","), metavar="RUN,...",
                        help=f"the runs to make, among {', '.join(RUNS)} (default: all)")
    parser.add_argument("--no-peers", action="store_true", help="leave out Hugo and the peers' floor")
    parser.add_argument("--work", type=Path, help="the folder to work in (default: /dev/shm)")
    args = parser.parse_args()
    unknown = sorted(set(args.runs or ()) - set(RUNS))
    if unknown:
        parser.error(f"unknown run {unknown[0]!r}; expected some of {', '.join(RUNS)}")
    if not args.no_peers and set(args.runs or RUNS) & set(PEER_RUNS):
        check_peers("hugo" in (args.runs or RUNS))
    base = args.work or (Path("/dev/shm") if Path("/dev/shm").is_dir() else None)
    work = Path(tempfile.mkdtemp(prefix="freeze-bench-", dir=base))
    CHILD_ENV.pop("PYTHONDONTWRITEBYTECODE", None)
    CHILD_ENV["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    print(f"working in {work} on {os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f} at the start")
    jobs = sorted(set(args.jobs))
    try:
        sizes: list[tuple[int, dict[str, list]]] = []
        for users in args.users:
            runs = runs_of(users, args.runs, jobs, not args.no_peers)
            sizes.append((users, bench_size(users, args.stores, args.rounds, jobs, runs, work)))
            report(*sizes[-1])
        for (smaller, first), (larger, second) in zip(sizes, sizes[1:]):
            report_growth(smaller, larger, first, second)
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
