"""Freeze benchmark: stock Frozen-Flask against `python site.py freeze`, run by hand.

    python bench/freeze_bench.py                  # 10,000 users, 100 stores, 3 rounds
    python bench/freeze_bench.py --users 1000 50000 --rounds 5

For each size it generates a site from the example's templates and static
files into a fresh folder (on /dev/shm when there is one), then runs, round
after round in alternation, each as its own process:

  stock    Frozen-Flask as documented: Freezer(app), default config, one process
  stock-py the same with PyYAML's pure-Python loader (PyYAML without libyaml)
  clean    python site.py freeze into a fresh folder (no state)
  edit     python site.py freeze after changing one user's bio
  nothing  python site.py freeze with nothing changed

and prints the median wall time of the whole process (Python start-up
included), the time the command reports for itself, pages per second, peak
memory (the RSS of the process and all its children, summed while it runs,
so pages shared after a fork count twice) and the speed-up over each stock
run. Every output lands in a fresh folder; nothing is deleted until the end.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_site import make_site, user_yaml  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
# Memory is sampled this often: often enough to catch each worker's peak, and
# rarely enough that the sampling itself does not take CPU from a 2-core freeze.
SAMPLE_SECONDS = 0.05
VARIANTS = ("stock-py", "stock", "clean", "edit", "nothing")
STOCK = """
import sys, time
started = time.perf_counter()
from pathlib import Path
sys.path.insert(0, {repo!r})
from flask_frozen import Freezer
from sitegen.app import create_app
from sitegen.content.loader import load_content
from sitegen.freeze.render import register_generators
root, dest = Path(sys.argv[1]), sys.argv[2]
if sys.argv[3:] == ["pure-python-yaml"]:
    import yaml, sitegen.content.yaml_source
    sitegen.content.yaml_source.Loader = yaml.SafeLoader
content = load_content(root)
app = create_app(root, content, config={{"FREEZER_DESTINATION": dest}})
app.config["FREEZER_BASE_URL"] = app.config["SITE_BASE_URL"]
freezer = Freezer(app)
register_generators(freezer, {{"users": list(content.users), "stores": list(content.stores)}})
freezer.freeze()
print(f"in {{time.perf_counter() - started:.3f}} s")
"""


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


def run(command: list[str]) -> tuple[float, int, float]:
    """Wall seconds, peak summed RSS, and the seconds the command reports for itself ("in X s")."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
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
    return seconds, peak, float(re.search(r"\bin ([0-9.]+) s", out).group(1))


def freeze_command(root: Path, dest: Path, jobs: int | None) -> list[str]:
    command = [sys.executable, str(REPO / "site.py"), "--root", str(root), "freeze", "--dest", str(dest)]
    return command + (["--jobs", str(jobs)] if jobs else [])


def bench_size(users: int, stores: int, rounds: int, jobs: int | None, work: Path) -> dict[str, list]:
    site = make_site(work / f"site-{users}", users, stores)
    pages = users + stores + 11  # records, 7 pages, 4 static files
    incremental_dest = work / f"incremental-{users}" / "build"
    subprocess.run(freeze_command(site, incremental_dest, jobs), check=True, capture_output=True)
    time.sleep(2.1)  # past the window in which just-written files are hashed again
    subprocess.run(freeze_command(site, incremental_dest, jobs), check=True, capture_output=True)
    results: dict[str, list] = {variant: [] for variant in VARIANTS}
    for round_number in range(rounds):
        fresh = work / f"round-{users}-{round_number}"
        stock = [sys.executable, "-c", STOCK.format(repo=str(REPO)), str(site)]
        results["stock-py"].append(run(stock + [str(fresh / "stock-py"), "pure-python-yaml"]))
        results["stock"].append(run(stock + [str(fresh / "stock")]))
        results["clean"].append(run(freeze_command(site, fresh / "clean" / "build", jobs)))
        edited = site / "content" / "users" / f"user-{(round_number * 7919) % users:05d}.yaml"
        edited.write_text(user_yaml((round_number * 7919) % users, bio=f"Edited in round {round_number}."))
        results["edit"].append(run(freeze_command(site, incremental_dest, jobs)))
        results["nothing"].append(run(freeze_command(site, incremental_dest, jobs)))
    for variant, runs in results.items():
        results[variant] = [pages, runs]
    return results


def report(users: int, results: dict[str, list]) -> float:
    stock_py, stock = (statistics.median(seconds for seconds, _, _ in results[name][1])
                       for name in ("stock-py", "stock"))
    print(f"\n{users:,} users ({results['stock'][0]:,} pages), medians of {len(results['stock'][1])} rounds")
    print("| run | wall s | min-max | in-process s | pages/s | peak RSS MB (all processes) "
          "| speed-up vs stock | vs stock-py |")
    print("|---|---|---|---|---|---|---|---|")
    for variant, (pages, runs) in results.items():
        times = [seconds for seconds, _, _ in runs]
        median = statistics.median(times)
        own = statistics.median(reported for _, _, reported in runs)
        peak = max(rss for _, rss, _ in runs) / 2**20
        print(f"| {variant} | {median:.2f} | {min(times):.2f}-{max(times):.2f} | {own:.2f} | {pages / median:,.0f} "
              f"| {peak:.0f} | {stock / median:.1f}x | {stock_py / median:.1f}x |")
    return statistics.median(seconds for seconds, _, _ in results["clean"][1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, nargs="+", default=[10_000], choices=[1_000, 10_000, 50_000])
    parser.add_argument("--stores", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=None, help="passed to freeze (default: all cores)")
    args = parser.parse_args()
    base = "/dev/shm" if Path("/dev/shm").is_dir() else None
    work = Path(tempfile.mkdtemp(prefix="freeze-bench-", dir=base))
    print(f"working in {work} on {os.cpu_count()} cores")
    try:
        clean_medians = {users: report(users, bench_size(users, args.stores, args.rounds, args.jobs, work))
                         for users in args.users}
    finally:
        shutil.rmtree(work)
    if 10_000 in clean_medians and 50_000 in clean_medians:
        print(f"\nclean freeze, 50,000 / 10,000 users: {clean_medians[50_000] / clean_medians[10_000]:.2f}x")


if __name__ == "__main__":
    main()
