"""Handing ``python site.py freeze`` to a watching freeze of the same build, and the watcher's end of it.

A watcher (``freeze --watch``, sitegen/freeze/watch.py) listens on a Unix
socket in the state folder, ``.<build>.state/watch.sock``. The socket is made
with mode 0600 in a folder no other user may write to, and each end checks
the other's user id (``SO_PEERCRED``), so only the watcher's own user is
served. A client sends one small JSON request, the project and the
fingerprint of its code and options (incremental.fingerprint, which covers
the base URL), with its standard output and error attached
(``socket.send_fds``): the watcher writes the freeze's progress and its one
line, or its one-line error, straight to the client's terminal, then answers
with one JSON line: ``done`` and the exit status, ``cold`` (freeze yourself:
other code or options), or ``retry`` (the watcher is restarting on new
code; the socket stays open across the restart, so the next connection
waits for the new process). A client that finds no socket, a stale one
(connection refused: it is removed), or anything unexpected freezes by
itself, as it always did. ``--clean`` is never handed over. So does a
client whose watcher is stopped (Ctrl-Z, SIGSTOP) rather than busy: it looks
at the watcher's process while it waits, and leaves; the watcher, resumed,
drops a request whose client has gone, so it never writes into a terminal
that is no longer waiting for it.

The client runs before Flask or click is imported (see
sitegen/freeze_command.py): it costs a stat when no watcher runs, and the
fingerprint (3 ms) and one round trip when one does.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import stat
import struct
import sys
from pathlib import Path
from typing import Any, TextIO

from ..errors import SiteError
from .incremental import BuildFolders, fingerprint

SOCKET_NAME = "watch.sock"
PROTOCOL = 1
MAX_MESSAGE = 64 * 1024
# How often a client asks again a watcher that answered "retry" (it restarts on new code once a time).
RETRIES = 3
# A client that connected has this long to send its request.
REQUEST_SECONDS = 2.0
# How often a waiting client looks whether the watcher is stopped rather than busy.
STOPPED_CHECK_SECONDS = 0.5
# Set in the environment of a watcher that re-executes itself: the listening socket's descriptor.
INHERITED_SOCKET = "SITEGEN_WATCH_SOCKET_FD"


def socket_path(dest: Path) -> Path:
    return BuildFolders(dest).state / SOCKET_NAME


# ---------------------------------------------------------------- the client

def hand_over(root: Path, dest: Path, base_url: str | None, clean: bool) -> int | None:
    """The exit status of the freeze a watcher of ``dest`` ran for this command; None: freeze here."""
    if clean:
        return None
    path = socket_path(Path(dest).resolve())
    try:
        found = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISSOCK(found.st_mode) or found.st_uid != os.getuid():
        return None
    request = json.dumps({"protocol": PROTOCOL, "root": str(root),
                          "fingerprint": fingerprint(root, base_url).hex()}).encode()
    for _ in range(RETRIES):
        answer = _ask(path, found, request)
        if answer.get("status") != "retry":
            break
    if answer.get("status") == "done" and isinstance(answer.get("exit"), int):
        return answer["exit"]
    return None


def _ask(path: Path, found: os.stat_result, request: bytes) -> dict[str, Any]:
    """The watcher's answer to ``request``; {} when there is none to be had."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        try:
            connection.connect(str(path))
        except ConnectionRefusedError:  # nobody listens: a watcher that was killed
            _remove_stale(path, found)
            return {}
        except OSError:
            return {}
        try:
            peer = _peer(connection)
            if peer is not None and peer[1] != os.getuid():
                return {}
            sys.stdout.flush()
            sys.stderr.flush()
            socket.send_fds(connection, [request], [sys.stdout.fileno(), sys.stderr.fileno()])
            return _read_answer(connection, peer[0] if peer else None)
        except (OSError, ValueError, AttributeError):  # no usable stdout, a watcher gone mid-way
            return {}


def _remove_stale(path: Path, found: os.stat_result) -> None:
    """Remove the socket a dead watcher left, unless a new watcher has just put its own in its place."""
    with contextlib.suppress(OSError):
        if os.lstat(path).st_ino == found.st_ino:
            os.unlink(path)


def _read_answer(connection: socket.socket, watcher: int | None) -> dict[str, Any]:
    """The watcher's answer; {} if the watcher (process ``watcher``) is found stopped meanwhile.

    A freeze takes as long as it takes, so there is no time limit: a busy
    watcher is waited for, a stopped one is not.
    """
    connection.settimeout(STOPPED_CHECK_SECONDS if watcher else None)
    data = b""
    while not data.endswith(b"\n") and len(data) < MAX_MESSAGE:
        try:
            chunk = connection.recv(MAX_MESSAGE)
        except TimeoutError:
            if _is_stopped(watcher):
                return {}
            continue
        if not chunk:
            break
        data += chunk
    answer = json.loads(data or b"{}")
    return answer if isinstance(answer, dict) else {}


def _is_stopped(pid: int | None) -> bool:
    """Whether process ``pid`` is stopped (Ctrl-Z, SIGSTOP, a debugger), as Linux's /proc tells."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat_file:
            return stat_file.read().rpartition(b")")[2].split()[0] in (b"T", b"t")
    except (OSError, IndexError):  # no /proc here, or the process has just ended (the answer will say)
        return False


def _peer(connection: socket.socket) -> tuple[int, int] | None:
    """The process id and user id at the other end (None where the system does not tell)."""
    if not hasattr(socket, "SO_PEERCRED"):
        return None
    credentials = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, user, _ = struct.unpack("3i", credentials)
    return pid, user


def _has_hung_up(connection: socket.socket) -> bool:
    """Whether the client closed its end after sending its request (it sends nothing more)."""
    timeout = connection.gettimeout()
    connection.setblocking(False)  # with a timeout, recv would wait for data first
    try:
        return connection.recv(1, socket.MSG_PEEK) == b""
    except (BlockingIOError, InterruptedError):
        return False
    finally:
        connection.settimeout(timeout)


# ---------------------------------------------------------------- the watcher's end

class ClientOutput(io.TextIOBase):
    """A client's standard output or error, in the watcher: a client gone meanwhile (a closed pipe)
    must not stop the watcher, so writing to it never fails."""

    def __init__(self, descriptor: int):
        self.file = open(descriptor, "w", encoding=sys.stdout.encoding or "utf-8",  # noqa: SIM115
                         errors="backslashreplace")

    def write(self, text: str) -> int:
        with contextlib.suppress(OSError, ValueError):  # ValueError: closed
            self.file.write(text)
        return len(text)

    def flush(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.file.flush()

    def isatty(self) -> bool:
        return self.file.isatty()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.file.close()
        super().close()


class Request:
    """One client's request: what it runs, and its standard output and error to write the freeze's lines to."""

    def __init__(self, connection: socket.socket, fields: dict[str, Any], descriptors: list[int]):
        self.connection = connection
        self.root, self.fingerprint = fields.get("root"), fields.get("fingerprint")
        self.out: TextIO = ClientOutput(descriptors[0])  # type: ignore[assignment]
        self.err: TextIO = ClientOutput(descriptors[1])  # type: ignore[assignment]

    def answer(self, status: str, exit_status: int | None = None) -> None:
        """Send the answer, after letting go of the client's output (a reader of a pipe then sees it end)."""
        self.close_output()
        with contextlib.suppress(OSError):
            self.connection.sendall(json.dumps({"status": status, "exit": exit_status}).encode() + b"\n")
        self.connection.close()

    def close_output(self) -> None:
        self.out.close()
        self.err.close()


class WatchSocket:
    """The listening socket at socket_path(dest); kept open when the watcher re-executes itself.

    ``restarted`` says whether it was inherited from the process this one
    replaced (os.execv), rather than made now.
    """

    def __init__(self, dest: Path):
        self.path = socket_path(dest)
        inherited = self._inherited()
        self.restarted = inherited is not None
        self.listener = inherited or self._bind(dest)
        self.inode = os.stat(self.path).st_ino
        # Not held by the workers the watcher forks: workers left running by a killed watcher kept it
        # listening, and the next client, connected but never answered, could not tell it was stale.
        os.register_at_fork(after_in_child=self.listener.close)

    def fileno(self) -> int:
        return self.listener.fileno()

    def _inherited(self) -> socket.socket | None:
        descriptor = os.environ.pop(INHERITED_SOCKET, None)  # not handed on to the workers or a later restart
        if descriptor is None or not descriptor.isdigit():
            return None
        try:
            listener = socket.socket(fileno=int(descriptor))
        except OSError:
            return None
        listener.set_inheritable(False)
        if listener.family != socket.AF_UNIX or listener.getsockname() != str(self.path):
            listener.close()
            return None
        return listener

    def _bind(self, dest: Path) -> socket.socket:
        state = self.path.parent
        state.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = os.stat(state)
        if info.st_uid != os.getuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise SiteError(f"refusing to watch: {state} may be written to by other users (chmod go-w it)")
        if os.path.lexists(self.path):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                try:
                    probe.connect(str(self.path))
                except OSError:  # refused: left by a watcher that was killed
                    os.unlink(self.path)
                else:
                    raise SiteError(f"another `freeze --watch` is already freezing into {dest}")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        umask = os.umask(0o177)  # the socket is made 0600 at once (this process has no other thread)
        try:
            listener.bind(str(self.path))
        finally:
            os.umask(umask)
        listener.listen(16)
        return listener

    def accept(self) -> Request | None:
        """The next request; None for a connection that is not one (a probe, another user, a bad message)."""
        connection, _ = self.listener.accept()
        connection.settimeout(REQUEST_SECONDS)
        descriptors: list[int] = []
        try:
            peer = _peer(connection)
            if peer is not None and peer[1] != os.getuid():
                raise ValueError("another user")
            message, descriptors, _, _ = socket.recv_fds(connection, MAX_MESSAGE, 2)
            fields = json.loads(message)
            if not (isinstance(fields, dict) and fields.get("protocol") == PROTOCOL and len(descriptors) == 2):
                raise ValueError("not a request")
            if _has_hung_up(connection):
                raise ValueError("a client that stopped waiting (it found this process stopped)")
            return Request(connection, fields, descriptors)
        except (OSError, ValueError):
            for descriptor in descriptors:
                os.close(descriptor)
            connection.close()
            return None

    def keep_across_exec(self) -> None:
        """Let the process that os.execv makes of this one take the socket over (see _inherited)."""
        self.listener.set_inheritable(True)
        os.environ[INHERITED_SOCKET] = str(self.listener.fileno())

    def close(self) -> None:
        """Stop listening and remove the socket, unless another watcher's has taken its place."""
        self.listener.close()
        with contextlib.suppress(OSError):
            if os.lstat(self.path).st_ino == self.inode:
                os.unlink(self.path)
