"""Symbolic links in the project: followed while they stay inside it, refused when they lead out.

Jinja-free and Flask-free, so that a freeze with nothing to render can check
every link (sitegen/freeze/incremental.py) as cheaply as the content reader
(sitegen/content/yaml_source.py); sitegen/contained.py applies the same rule
to the template loader and the static files.
"""

from __future__ import annotations

import os
import stat

OUTSIDE_LINK = "a link to a file outside the project"


def leads_outside(path: str | os.PathLike, root: str | os.PathLike) -> bool:
    """Whether ``path`` is, or lies behind, a symbolic link to a place outside ``root``.

    Paths without a link below ``root`` cost one ``lstat`` per part; only a
    link is resolved. A missing path is not outside (reading it fails anyway).
    """
    text, top = os.fspath(path), os.fspath(root)
    prefix = os.path.join(top, "")
    if text.startswith(prefix):
        current = top
        for part in text[len(prefix):].split(os.sep):
            current = os.path.join(current, part)
            try:
                if stat.S_ISLNK(os.lstat(current).st_mode):
                    break
            except OSError:
                return False
        else:
            return False
    real, real_top = os.path.realpath(text), os.path.realpath(top)
    return real != real_top and not real.startswith(os.path.join(real_top, ""))


def followed_link(root: str | os.PathLike, relative: str, problems: list[str]) -> bool:
    """Whether the link ``root/relative`` may be followed: it leads inside the project, to something.

    A link leading outside, or to nothing, adds a one-line problem naming the
    link (never its target, whose name may say more than the project should).
    """
    path = os.path.join(root, relative)
    if leads_outside(path, root):
        problems.append(f"{relative}: {OUTSIDE_LINK}")
        return False
    if not os.path.exists(path):
        problems.append(f"{relative}: a link to a file that does not exist")
        return False
    return True
