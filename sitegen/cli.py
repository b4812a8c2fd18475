"""The command line: ``python site.py COMMAND``, run by ``site.cli()``.

Each command is a thin shell over a function in its own module, imported
when the command runs, so ``--help`` stays fast. The usual freeze command
lines do not come here (see sitegen/freeze_command.py).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from . import freeze_command
from .base_url import normalized_base_url
from .errors import SiteError
from .site import Site, load_site


def run(site: Site, args: list[str] | None = None) -> None:
    """The command line of ``site``."""
    freeze_command.prepare()
    main(args, obj=site)


class ReportedError(click.ClickException):
    """A SiteError as click shows an error: its message as it is, then exit 1."""

    def show(self, file: Any = None) -> None:
        click.echo(self.format_message(), file=file or sys.stderr)


class SiteCommands(click.Group):
    """The commands, their SiteErrors shown by click as one line each."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SiteError as exc:
            raise ReportedError(exc.format_message()) from None


@click.group(cls=SiteCommands, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--root", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              show_default="the folder of site.py",
              help="Another project folder, holding its own site.py, content/, templates/ and static/.")
@click.pass_context
def main(ctx: click.Context, root: Path | None) -> None:
    """Build a data-driven site from YAML content and Jinja templates."""
    if root is not None or ctx.obj is None:
        ctx.obj = load_site(root or Path.cwd())


@main.command()
@click.option("--dest", type=click.Path(path_type=Path), default=None,
              help="Output folder.  [default: build/ in the project]")
@click.option("--base-url", default=None, metavar="URL",
              help="Where the site will be published, e.g. https://example.org/sub/ "
                   "[default: base_url from content/site.yaml]")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None,
              help="Worker processes.  [default: all cores]")
@click.option("--clean", is_flag=True,
              help="Render every page, ignoring what the last freeze recorded (with --watch: the first time).")
@click.option("--watch", is_flag=True,
              help="Keep freezing after every save under content/, templates/ and static/ (and of site.py), "
                   "until Ctrl-C; meanwhile a plain freeze into the same folder is handed to it.")
@click.pass_obj
def freeze(site: Site, dest: Path | None, base_url: str | None, jobs: int | None, clean: bool, watch: bool) -> None:
    """Write every page of the site into static files (only the changed ones after the first time)."""
    freeze_command.freeze(site, dest, _checked_base_url(base_url), jobs, clean, watch)


def _checked_base_url(url: str | None) -> str | None:
    if url is None:
        return None
    try:
        return normalized_base_url(url)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--base-url") from None


@main.command("add-account")
@click.argument("name")
@click.option("--password-stdin", is_flag=True,
              help="Read the password from the first line of standard input instead of prompting.")
@click.pass_obj
def add_account_command(site: Site, name: str, password_stdin: bool) -> None:
    """Create a login account for the preview's live pages, or change its password.

    Only a salted hash of the password is stored, in instance/accounts.yaml
    (git-ignored). A new password ends the account's earlier sessions.
    """
    from .live.accounts import ACCOUNTS_FILE, add_account, check_name

    problem = check_name(name)
    if problem:
        raise SiteError(problem)
    _migrate_old_accounts(site.root)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True,
                                default="", show_default=False)
    created = add_account(site.root, name, password)
    action = "Added account" if created else "Changed the password of"
    click.echo(f"{action} {name!r} in {ACCOUNTS_FILE.as_posix()}")


@main.command("remove-account")
@click.argument("name")
@click.pass_obj
def remove_account_command(site: Site, name: str) -> None:
    """Delete a login account; its sessions end with it."""
    from .live.accounts import ACCOUNTS_FILE, remove_account

    _migrate_old_accounts(site.root)
    remove_account(site.root, name)
    click.echo(f"Removed account {name!r} from {ACCOUNTS_FILE.as_posix()}")


def _migrate_old_accounts(root: Path) -> None:
    """Accounts moved from content/ to instance/: carry an old file over, saying so."""
    from .live.accounts import migrate_old_accounts

    notice = migrate_old_accounts(root)
    if notice:
        click.echo(notice, err=True)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but loopback needs --allow-network.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0: any free port).")
@click.option("--open", "open_browser", is_flag=True, help="Open the site in a web browser.")
@click.option("--allow-network", is_flag=True,
              help="Allow a --host that other machines can reach.")
@click.pass_obj
def preview(site: Site, host: str, port: int, open_browser: bool, allow_network: bool) -> None:
    """Serve the site with live reload while you edit it."""
    from .preview.server import is_loopback, run_preview

    if not is_loopback(host):
        if not allow_network:
            raise click.BadParameter(
                f"{host} is reachable from other machines; add --allow-network if you mean it",
                param_hint="--host")
        click.echo(f"warning: the preview (and its login and upload pages) is reachable from "
                   f"the network at {host}:{port}; it is not made to face untrusted visitors",
                   err=True)
    _migrate_old_accounts(site.root)
    run_preview(site.root, host, port, open_browser=open_browser)
