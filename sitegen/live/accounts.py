"""Login accounts for the preview's live pages, their sessions, and the throttle that guards them.

Accounts are stored in ``instance/accounts.yaml`` as ``username: password hash``
(Werkzeug's salted scrypt by default), never as plain text. They are local
state like the secret key, not content: ``instance/`` is git-ignored, so
``git add .`` never commits the hashes. Only the live blueprint and the
account commands read this file; freezing never needs it.

A session is valid only for the *session epoch* it was signed in under: a
digest of the account's password hash and its sign-out token (kept beside the
accounts, in ``instance/sessions.json``). Changing the password or removing
the account changes the hash; signing out draws a new token. Either way every
earlier session of that account ends, wherever its cookie is.

No Flask import here, so ``python site.py add-account`` starts fast.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import yaml
from werkzeug.security import check_password_hash, generate_password_hash

from ..content.yaml_source import Loader
from ..errors import ContentError, SiteError

ACCOUNTS_FILE = Path("instance") / "accounts.yaml"
# Where accounts were kept before they moved to instance/ (see migrate_old_accounts).
OLD_ACCOUNTS_FILE = Path("content") / "accounts.yaml"
SESSIONS_FILE_NAME = "sessions.json"
NAME_PATTERN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*\Z")
MAX_NAME_LENGTH = 64
# A Werkzeug hash is "method$salt$hash"; anything else is most likely a pasted password.
HASH_PATTERN = re.compile(r"(scrypt|pbkdf2):[a-z0-9:]+\$[^$\s]+\$[0-9a-f]+\Z")
FILE_HEADER = (
    "# Login accounts for the live pages of `python site.py preview`: username -> password hash.\n"
    "# Managed with `python site.py add-account NAME` and `remove-account NAME`.\n"
    "# Never write a plain-text password here.\n"
)


def check_name(name: str) -> str | None:
    """Why ``name`` cannot be an account name, or None when it can."""
    if not NAME_PATTERN.match(name) or len(name) > MAX_NAME_LENGTH:
        return (f"bad account name {name!r}: use lowercase ASCII letters, digits and single "
                f"hyphens, at most {MAX_NAME_LENGTH} characters")
    return None


def load_accounts(path: Path, root: Path) -> dict[str, str]:
    """username -> password hash; an absent file means no accounts.

    Values are read straight from the YAML nodes, never constructed, so
    aliases cannot expand and YAML 1.1 typing cannot bite.
    """
    shown = _display(path, root)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ContentError(shown, 1, 1, f"cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        node = yaml.compose(text, Loader=Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise ContentError(shown, mark.line + 1 if mark else 1, mark.column + 1 if mark else 1,
                           f"invalid YAML: {exc.problem or exc.context}") from None
    if node is None:
        return {}
    if not isinstance(node, yaml.MappingNode):
        raise _located(shown, node, "expected a mapping of username: password hash")
    accounts: dict[str, str] = {}
    for key_node, value_node in node.value:
        name = key_node.value if isinstance(key_node, yaml.ScalarNode) else ""
        problem = check_name(name)
        if problem:
            raise _located(shown, key_node, problem)
        if name in accounts:
            raise _located(shown, key_node, f"duplicate account {name!r}")
        if not (isinstance(value_node, yaml.ScalarNode) and HASH_PATTERN.match(value_node.value)):
            raise _located(shown, value_node,
                           f"account {name!r} needs a password hash, not a password; "
                           f"set it with `python site.py add-account {name}`")
        accounts[name] = value_node.value
    return accounts


def _located(shown: str, node: yaml.Node, message: str) -> ContentError:
    return ContentError(shown, node.start_mark.line + 1, node.start_mark.column + 1, message)


def _display(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def save_accounts(path: Path, accounts: dict[str, str]) -> None:
    """Write the accounts file atomically (a crash leaves the old file whole)."""
    lines = [FILE_HEADER] + [f'{name}: "{accounts[name]}"\n' for name in sorted(accounts)]
    _write_atomically(path, "".join(lines))


def _write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one step; the file is private (mode 0600)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temp, path)
    except BaseException:
        os.unlink(temp)
        raise


def migrate_old_accounts(root: Path) -> str | None:
    """Move content/accounts.yaml, where accounts used to be, to instance/accounts.yaml.

    Returns a line telling what was done, or None when there was nothing to
    move; when both files exist it refuses rather than choose one.
    """
    old, new = root / OLD_ACCOUNTS_FILE, root / ACCOUNTS_FILE
    if not old.exists():
        return None
    if new.exists():
        raise SiteError(f"{OLD_ACCOUNTS_FILE.as_posix()} is no longer read: the accounts are in "
                        f"{ACCOUNTS_FILE.as_posix()}; delete the old file (and `git rm --cached` it "
                        f"if it was committed)")
    new.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.replace(old, new)
    return (f"moved {OLD_ACCOUNTS_FILE.as_posix()} to {ACCOUNTS_FILE.as_posix()} (git-ignored: "
            f"password hashes are local state, not content; if the old file was committed, "
            f"`git rm --cached {OLD_ACCOUNTS_FILE.as_posix()}`)")


def add_account(root: Path, name: str, password: str) -> bool:
    """Store the hash of ``password`` for ``name``; True when the account is new."""
    problem = check_name(name)
    if problem:
        raise SiteError(problem)
    if not password:
        raise SiteError("empty password: an account needs a password")
    path = root / ACCOUNTS_FILE
    accounts = _load_for_cli(path, root)
    created = name not in accounts
    accounts[name] = generate_password_hash(password)
    save_accounts(path, accounts)
    return created


def remove_account(root: Path, name: str) -> None:
    path = root / ACCOUNTS_FILE
    accounts = _load_for_cli(path, root)
    if name not in accounts:
        raise SiteError(f"unknown account {name!r}: {ACCOUNTS_FILE.as_posix()} has no such account")
    del accounts[name]
    save_accounts(path, accounts)


def _load_for_cli(path: Path, root: Path) -> dict[str, str]:
    try:
        return load_accounts(path, root)
    except ContentError as exc:
        raise SiteError(str(exc)) from None


def verify_password(accounts: dict[str, str], name: str, password: str) -> bool:
    """Whether ``password`` is right for ``name``, taking as long for an unknown name.

    An unknown name is checked against a dummy hash made with the same method
    and cost as the stored ones, so timing does not tell which names exist.
    """
    stored = accounts.get(name)
    if stored is None:
        method = next(iter(accounts.values()), "scrypt$").split("$", 1)[0]
        check_password_hash(_dummy_hash(method), password)
        return False
    return check_password_hash(stored, password)


@lru_cache(maxsize=8)
def _dummy_hash(method: str) -> str:
    return generate_password_hash(os.urandom(16).hex(), method=method)


class FailureThrottle:
    """Counts failed attempts per client; ``max_failures`` within ``window`` seconds block it.

    An attempt is counted *before* it is checked (``acquire``) and forgotten
    only if it succeeds, so simultaneous attempts cannot all slip under the
    limit: at most ``max_failures`` are ever checked per window. In memory,
    per app: the preview is one process, and a restart forgetting the count is
    acceptable for a local server.
    """

    MAX_CLIENTS = 10_000

    def __init__(self, max_failures: int, window: float,
                 clock: Callable[[], float] = time.monotonic):
        self.max_failures, self.window, self.clock = max_failures, window, clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def acquire(self, client: str) -> int:
        """Count an attempt by ``client`` as failed until ``succeeded`` says otherwise.

        Returns 0 when the attempt may go ahead, else the seconds to wait (and
        the attempt is not counted).
        """
        with self._lock:
            failures = self._recent(client)
            if len(failures) >= self.max_failures:
                return max(1, int(failures[0] + self.window - self.clock() + 0.999))
            if client not in self._failures and len(self._failures) >= self.MAX_CLIENTS:
                for stale in [c for c in self._failures if not self._recent(c)]:
                    del self._failures[stale]
            self._failures.setdefault(client, failures).append(self.clock())
            return 0

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)

    def _recent(self, client: str) -> deque[float]:
        failures = self._failures.get(client, deque())
        while failures and failures[0] <= self.clock() - self.window:
            failures.popleft()
        return failures


# ---------------------------------------------------------------- sessions

_sign_out_lock = threading.Lock()


def load_sign_outs(path: Path) -> dict[str, str]:
    """account -> its current sign-out token; a missing or unreadable file means none yet."""
    try:
        tokens = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in tokens.items() if isinstance(v, str)} if isinstance(tokens, dict) else {}


def end_sessions(path: Path, name: str) -> None:
    """Draw a new sign-out token for ``name``: every session signed in before is over."""
    with _sign_out_lock:
        tokens = load_sign_outs(path)
        tokens[name] = secrets.token_hex(16)
        _write_atomically(path, json.dumps(tokens, indent=1, sort_keys=True) + "\n")


def session_epoch(secret: str | bytes, name: str, password_hash: str, sign_out_token: str) -> str:
    """What a session of ``name`` must carry to be valid: changes with the hash and the token."""
    key = secret.encode() if isinstance(secret, str) else secret
    message = f"{name}\0{password_hash}\0{sign_out_token}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:32]
