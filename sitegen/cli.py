"""The command line: ``python site.py COMMAND``.

Each command is a thin shell over a function in its own module, imported
when the command runs, so ``--help`` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--root", type=click.Path(file_okay=False, exists=True, path_type=Path),
              default=PROJECT_ROOT, show_default="the folder of site.py",
              help="Project folder holding content/, templates/ and static/.")
@click.pass_context
def main(ctx: click.Context, root: Path) -> None:
    """Build a data-driven site from YAML content and Jinja templates."""
    ctx.obj = root.resolve()


@main.command()
@click.option("--dest", type=click.Path(path_type=Path), default=None,
              help="Output folder.  [default: build/ in the project]")
@click.option("--base-url", default=None, metavar="URL",
              help="Where the site will be published, e.g. https://example.org/sub/ "
                   "[default: base_url from content/site.yaml]")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None,
              help="Worker processes.  [default: all cores]")
@click.option("--clean", is_flag=True,
              help="Render every page, ignoring what the last freeze recorded.")
@click.pass_obj
def freeze(root: Path, dest: Path | None, base_url: str | None, jobs: int | None, clean: bool) -> None:
    """Write every page of the site into static files (only the changed ones after the first time)."""
    from .freeze import freeze_site

    show_progress = sys.stderr.isatty()

    def progress(done: int, total: int) -> None:
        if show_progress:
            click.echo(f"\rfreezing: {done}/{total} pages", nl=False, err=True)

    result = freeze_site(root, dest or root / "build", base_url=_checked_base_url(base_url),
                         progress=progress, jobs=jobs, clean=clean)
    if show_progress:
        click.echo("\r\033[K", nl=False, err=True)
    click.echo(f"Froze {result.pages} pages into {result.destination} in {result.seconds:.2f} s "
               f"({result.rendered} rendered, {result.removed} removed)")


def _checked_base_url(url: str | None) -> str | None:
    if url is None:
        return None
    if not url.startswith(("http://", "https://")):
        raise click.BadParameter("must start with http:// or https://", param_hint="--base-url")
    return url if url.endswith("/") else url + "/"
