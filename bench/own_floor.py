"""The floor for this project's own templates: what `python site.py freeze` writes, from plain Jinja.

    python bench/own_floor.py PROJECT OUT [-j 2] [--check BUILD]

A measuring stick for bench/freeze_bench.py, not a product: what a hand-written
renderer of this one example site would do, without Flask, Frozen-Flask or the
engine's request machinery, so that the benchmark can say how close the freeze
comes to the cost of parsing, rendering and writing alone. It knows the example
site's views (site.py: home, about, user_profile, storefront) and its two
collections (users, with listing pages; stores), and what the engine adds to
every site (the listing pages, the sitemap and its parts past 50,000 URLs,
robots.txt, 404.html, the static files, and in templates ``url_for``,
``absolute_url``, ``request.endpoint``, ``len``). From the project it takes what
such a renderer would share with it: the templates (the project's, then the
engine's), content/, and from site.py the routes' rules, the collections'
listing URLs and page sizes, and the template filters; Markdown is rendered by
the engine's own sitegen.content.markdown. Records are read with PyYAML's C
loader and not checked. Another site, or content the engine would convert
(text with surrounding spaces, say), gives different bytes: --check shows them.

The users are split in runs of whole listing pages, one run per process (-j):
each parses the users of its pages and writes their profiles and those listing
pages, so that no process waits for another; with several processes, the parent
writes everything else meanwhile, as ../shared/peers/render_only.py does.
"""

from __future__ import annotations

import argparse
import filecmp
import itertools
import math
import os
import re
import shutil
import sys
import time
import traceback
from fnmatch import fnmatch
from pathlib import Path
from types import SimpleNamespace

import jinja2
import yaml
from markupsafe import Markup

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
import sitegen  # noqa: E402
from sitegen.content.markdown import render_markdown  # noqa: E402
from sitegen.content.model import base_path_of  # noqa: E402
from sitegen.site import load_site  # noqa: E402

ENGINE_TEMPLATES = Path(sitegen.__file__).parent / "templates"
SITEMAP_LIMIT = 50_000  # URLs in one sitemap file, as sitegen/builtin_pages.py
STATIC_IGNORE = [".?*", "*~", "*.swp", "*.swx", "*.tmp"]  # as sitegen/freeze/render.py, matched on each name
PARAMETER = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")  # a Werkzeug rule's <converter:name>


def load(path: str) -> dict:
    with open(path, "rb") as file:
        return yaml.load(file.read(), Loader=yaml.CSafeLoader)


class Floor:
    """One site's pages: what the templates are given, and each page rendered and written."""

    def __init__(self, project: Path, out: Path):
        self.project, self.out = project, str(out)
        self.folders: set[str] = set()  # made by this process
        self.site = site = load_site(project)
        settings = load(str(project / "content" / "site.yaml"))
        base_url = settings["base_url"] if settings["base_url"].endswith("/") else settings["base_url"] + "/"
        self.base_path = base_path_of(base_url)
        self.prefix = self.base_path.rstrip("/")  # what url_for puts before every path (the script root)
        self.origin = base_url[: len(base_url) - len(self.base_path)]  # scheme and host: absolute_url's start
        self.settings = SimpleNamespace(**{**settings, "base_url": base_url,
                                           "about": self.markdown(settings["about"]),
                                           "nav": [SimpleNamespace(**item) for item in settings["nav"]]})
        self.per_page = site.collections["users"].per_page
        self.users_folder, self.stores_folder = (str(project / "content" / name) for name in ("users", "stores"))
        self.user_files = sorted(name for name in os.listdir(self.users_folder) if name.endswith(".yaml"))
        self.store_files = sorted(name for name in os.listdir(self.stores_folder) if name.endswith(".yaml"))
        self.user_pages = max(1, math.ceil(len(self.user_files) / self.per_page))
        self.urls = self._url_builders()
        # Flask's settings that change the output, and the engine's (sitegen/app.py).
        self.env = jinja2.Environment(
            loader=jinja2.ChoiceLoader([jinja2.FileSystemLoader(project / "templates"),
                                        jinja2.FileSystemLoader(ENGINE_TEMPLATES)]),
            autoescape=lambda name: name is None or name.endswith((".html", ".htm", ".xml", ".xhtml", ".svg")),
            auto_reload=False, line_statement_prefix="#", line_comment_prefix="##",
            undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
        self.env.globals.update(url_for=self.url_for, absolute_url=self.absolute_url, site=self.settings,
                                len=len, **site.template_globals)
        self.env.filters.update(site.template_filters)
        self.templates = {name: self.env.get_template(name) for name in (
            "profile.html", "users.html", "store.html", "stores.html", "index.html", "about.html", "404.html",
            "robots.txt", "sitemap.xml", "sitemap_index.xml")}  # compiled once, before any fork
        self.requests: dict[str, SimpleNamespace] = {}  # endpoint -> the `request` a template sees

    # ------------------------------------------------------------ what templates use

    def _url_builders(self) -> dict:
        prefix, builders = self.prefix, {
            "static": lambda filename: f"{prefix}/static/{filename}",
            "sitegen.sitemap": lambda: f"{prefix}/sitemap.xml",
            "sitegen.sitemap_part": lambda number: f"{prefix}/sitemaps/{number}.xml",
            "sitegen.robots": lambda: f"{prefix}/robots.txt",
            "sitegen.not_found_page": lambda: f"{prefix}/404.html",
        }
        for route in self.site.routes:
            path = prefix + PARAMETER.sub(r"{\1}", route.rule)
            builders[route.endpoint] = lambda path=path, **values: path.format(
                **{name: value if isinstance(value, str) else value.slug for name, value in values.items()})
        for name, collection in self.site.collections.items():
            if collection.listing:
                first = prefix + collection.listing
                builders[name] = lambda number=1, first=first: first if number == 1 else f"{first}page/{number}/"
        return builders

    def url_for(self, endpoint: str, **values) -> str:
        return self.urls[endpoint](**values)

    def absolute_url(self, endpoint: str, **values) -> str:
        return self.origin + self.urls[endpoint](**values)

    def markdown(self, source: str) -> Markup:
        return Markup(render_markdown(source, self.base_path, allow_html=self.site.raw_html))

    def user(self, name: str) -> SimpleNamespace:
        fields = load(os.path.join(self.users_folder, name))
        fields["bio"] = self.markdown(fields.get("bio", ""))
        fields.setdefault("awards", [])
        return SimpleNamespace(slug=name[: -len(".yaml")], **fields)

    def store(self, name: str) -> SimpleNamespace:
        return SimpleNamespace(slug=name[: -len(".yaml")], **load(os.path.join(self.stores_folder, name)))

    def listing_page(self, collection: str, number: int, count: int, total: int, records: list) -> SimpleNamespace:
        url = self.urls[collection]
        return SimpleNamespace(collection=collection, number=number, count=count, total=total, records=records,
                               previous_url=url(number - 1) if number > 1 else None,
                               next_url=url(number + 1) if number < count else None)

    # ------------------------------------------------------------ writing

    def write(self, url: str, text: str) -> None:
        """The file of a URL as the freeze names it: ``/users/ada/`` -> users/ada/index.html."""
        relative = url[len(self.prefix) + 1:]
        path = os.path.join(self.out, relative + "index.html" if relative.endswith("/") or not relative else relative)
        folder = os.path.dirname(path)
        if folder not in self.folders:
            try:
                os.mkdir(folder)  # a page's own folder, whose parent usually exists
            except FileExistsError:
                pass
            except FileNotFoundError:
                os.makedirs(folder)
            self.folders.add(folder)
        with open(path, "wb") as file:
            file.write(text.encode())

    def render(self, template: str, endpoint: str, **context) -> str:
        request = self.requests.get(endpoint)
        if request is None:
            request = self.requests[endpoint] = SimpleNamespace(endpoint=endpoint)
        return self.templates[template].render(request=request, **context)

    # ------------------------------------------------------------ the pages

    def user_run(self, numbers: range) -> None:
        """Listing pages ``numbers`` of /users/, and the profile of every user they list."""
        for number in numbers:
            names = self.user_files[(number - 1) * self.per_page:number * self.per_page]
            users = [self.user(name) for name in names]
            for user in users:
                self.write(self.url_for("user_profile", user=user),
                           self.render("profile.html", "user_profile", user=user, username=user.slug,
                                       date=user.joined, awards=user.awards))
            page = self.listing_page("users", number, self.user_pages, len(self.user_files), users)
            self.write(self.url_for("users", number=number),
                       self.render("users.html", "users", page=page, records=page.records))

    def other_pages(self) -> None:
        """Everything but the users' pages: stores, home, about, 404, robots.txt, the sitemap, static files."""
        stores = {store.slug: store for store in map(self.store, self.store_files)}
        for store in stores.values():
            self.write(self.url_for("storefront", store=store), self.render("store.html", "storefront", store=store))
        page = self.listing_page("stores", 1, 1, len(stores), list(stores.values()))
        self.write(self.url_for("stores"), self.render("stores.html", "stores", page=page, records=page.records))
        users = FirstUsers(len(self.user_files), lambda count: [self.user(name) for name in self.user_files[:count]])
        self.write(self.url_for("home"), self.render("index.html", "home", users=users, stores=stores))
        self.write(self.url_for("about"), self.render("about.html", "about"))
        self.write(self.url_for("sitegen.not_found_page"), self.render("404.html", "sitegen.not_found_page",
                                                                       missing=None))
        self.write(self.url_for("sitegen.robots"), self.render(
            "robots.txt", "sitegen.robots", sitemap_url=self.absolute_url("sitegen.sitemap")))
        self.sitemap()
        self.copy_static()

    def html_pages(self):
        """The sitemap's pages, in the engine's order (sitegen/builtin_pages.py html_pages)."""
        yield self.absolute_url("home")
        yield self.absolute_url("about")
        for number in range(1, self.user_pages + 1):
            yield self.absolute_url("users", number=number)
        yield self.absolute_url("stores")
        for name in self.user_files:
            yield self.absolute_url("user_profile", user=name[: -len(".yaml")])
        for name in self.store_files:
            yield self.absolute_url("storefront", store=name[: -len(".yaml")])

    def sitemap(self) -> None:
        """The sitemap, or past SITEMAP_LIMIT URLs an index and its parts, made one part at a time."""
        total = 3 + self.user_pages + len(self.user_files) + len(self.store_files)  # what html_pages yields
        parts = max(1, math.ceil(total / SITEMAP_LIMIT))
        pages = self.html_pages()
        if parts == 1:
            self.write(self.url_for("sitegen.sitemap"), self.render("sitemap.xml", "sitegen.sitemap",
                                                                    pages=list(pages)))
            return
        self.write(self.url_for("sitegen.sitemap"), self.render("sitemap_index.xml", "sitegen.sitemap", sitemaps=[
            self.absolute_url("sitegen.sitemap_part", number=number) for number in range(1, parts + 1)]))
        for number in range(1, parts + 1):
            self.write(self.url_for("sitegen.sitemap_part", number=number), self.render(
                "sitemap.xml", "sitegen.sitemap_part", pages=list(itertools.islice(pages, SITEMAP_LIMIT))))

    def copy_static(self) -> None:
        static = self.project / "static"
        for folder, folders, files in os.walk(static):
            folders[:] = [name for name in folders if not any(fnmatch(name, p) for p in STATIC_IGNORE)]
            for name in files:
                if not any(fnmatch(name, pattern) for pattern in STATIC_IGNORE):
                    source = Path(folder, name)
                    target = Path(self.out, "static", source.relative_to(static))
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(source, target)


class FirstUsers:
    """The home page's ``users``: how many there are, and the first few, the only ones it parses."""

    def __init__(self, total: int, first):
        self.total, self.first = total, first

    def __len__(self) -> int:
        return self.total


def build(floor: Floor, processes: int) -> None:
    """Every file, the users' pages split over ``processes`` forked processes."""
    pages = floor.user_pages
    runs = [range(1 + pages * index // processes, 1 + pages * (index + 1) // processes) for index in range(processes)]
    if processes == 1:
        floor.user_run(runs[0])
        floor.other_pages()
        return
    children = []
    for run in runs:
        pid = os.fork()
        if pid == 0:
            status = 0
            try:
                floor.user_run(run)
            except BaseException:
                traceback.print_exc()
                status = 1
            finally:
                os._exit(status)
        children.append(pid)
    floor.other_pages()
    failed = [pid for pid in children if os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])]
    if failed:
        raise SystemExit(f"own_floor: {len(failed)} of {processes} processes failed (their tracebacks are above)")


def differences(out: Path, build_folder: Path) -> list[str]:
    """Every file that is only in one folder or differs, the freeze's hidden marker aside."""
    def files(folder: Path) -> set[str]:
        return {os.path.relpath(os.path.join(base, name), folder) for base, _, names in os.walk(folder)
                for name in names if not (base == str(folder) and name.startswith("."))}

    ours, theirs = files(out), files(build_folder)
    found = [f"only in the build: {name}" for name in sorted(theirs - ours)]
    found += [f"only in the floor: {name}" for name in sorted(ours - theirs)]
    _, mismatch, errors = filecmp.cmpfiles(out, build_folder, sorted(ours & theirs), shallow=False)
    for name in mismatch + errors:
        mine, frozen = (out / name).read_bytes().splitlines(), (build_folder / name).read_bytes().splitlines()
        line = next((i for i, (a, b) in enumerate(zip(mine, frozen)) if a != b), min(len(mine), len(frozen)))
        shown = [side[line].decode(errors="replace") if line < len(side) else "(end of file)"
                 for side in (mine, frozen)]
        found.append(f"differs: {name} line {line + 1}: floor {shown[0]!r}, build {shown[1]!r}")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("project", type=Path, help="a project made by bench/make_site.py")
    parser.add_argument("out", type=Path, help="an empty or new folder to write into")
    parser.add_argument("-j", "--jobs", type=int, default=2, help="processes (default: 2)")
    parser.add_argument("--check", type=Path, metavar="BUILD", help="compare every file with this freeze's build")
    args = parser.parse_args()
    started = time.perf_counter()
    if not (args.project / "site.py").is_file():
        raise SystemExit(f"own_floor: no site.py in {args.project}")
    if args.out.exists() and any(args.out.iterdir()):
        raise SystemExit(f"own_floor: {args.out} is not empty")
    args.out.mkdir(parents=True, exist_ok=True)
    floor = Floor(args.project.resolve(), args.out)
    build(floor, max(1, args.jobs))
    print(f"Wrote {len(floor.user_files):,} users' site into {args.out} in {time.perf_counter() - started:.3f} s")
    if args.check:
        found = differences(args.out, args.check)
        for line in found[:40]:
            print(line)
        if found:
            raise SystemExit(f"own_floor: {len(found):,} files differ from {args.check}")
        print(f"identical to {args.check}")


if __name__ == "__main__":
    main()
