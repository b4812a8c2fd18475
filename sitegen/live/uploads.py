"""Word-list uploads: checked, then stored under a generated name, atomically.

The client's file name is only ever shown, never used as a path: each upload
is stored as ``<time>-<random>-<name as base64url>.txt`` inside the user's own
folder, so traversal, double extensions and reserved names cannot reach the
disk, and two uploads of the same name never meet. Writing goes to a hidden
temporary file first and is hard-linked into place, which fails rather than
overwrites; a refused upload writes nothing.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import os
import re
import secrets
import tempfile
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

MAX_SHOWN_NAME_BYTES = 120
STORED_NAME = re.compile(r"(?P<ns>[0-9]{19})-(?P<token>[0-9a-f]{16})-(?P<name>[A-Za-z0-9_-]+={0,2})\.txt\Z")
# Never shown: controls (Cc), invisible format characters such as the right-to-left
# override that makes "evil\u202etxt.exe" look like "evilexe.txt" (Cf), surrogates
# (Cs) and line or paragraph separators (Zl, Zp).
HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


class UploadRefused(Exception):
    """An upload that breaks a rule; ``status`` is the HTTP answer (400 or 413)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message, self.status = message, status


@dataclass(frozen=True)
class StoredUpload:
    stored_name: str
    shown_name: str
    size: int
    uploaded: dt.datetime


def shown_name(client_name: str) -> str:
    """The last path part of the client's name, as text fit to display (nothing invisible)."""
    name = re.split(r"[/\\]", client_name)[-1]
    name = "".join(c for c in name if unicodedata.category(c) not in HIDDEN_CATEGORIES)
    name = unicodedata.normalize("NFC", name).strip()
    stem, extension = os.path.splitext(name)
    while len((stem + extension).encode()) > MAX_SHOWN_NAME_BYTES:
        stem = stem[:-1]
    return stem + extension


def check_upload(client_name: str | None, stream: BinaryIO, *, limit: int,
                 extensions: tuple[str, ...]) -> tuple[str, bytes]:
    """The name to show and the checked bytes, or UploadRefused saying why."""
    name = shown_name(client_name or "")
    if not name:
        raise UploadRefused("No file was chosen: pick a .txt word list to upload.")
    extension = os.path.splitext(name)[1].lower()
    if extension not in extensions:
        allowed = ", ".join(extensions)
        raise UploadRefused(f"{name!r} is not an allowed file type: the name must end in {allowed}.")
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise UploadRefused(f"{name!r} is larger than the upload limit of {describe_size(limit)}.", 413)
    if not data:
        raise UploadRefused(f"{name!r} is empty.")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise UploadRefused(f"{name!r} is not UTF-8 text.") from None
    if b"\0" in data:
        raise UploadRefused(f"{name!r} is not a text file (it contains NUL bytes).")
    return name, data


def store_upload(folder: Path, name: str, data: bytes) -> StoredUpload:
    """Write ``data`` into ``folder`` under a fresh name, never replacing a file."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    encoded = base64.urlsafe_b64encode(name.encode()).decode()
    fd, temp = tempfile.mkstemp(dir=folder, prefix=".upload-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        while True:
            stored = f"{time.time_ns():019d}-{secrets.token_hex(8)}-{encoded}.txt"
            try:
                os.link(temp, folder / stored)
                break
            except FileExistsError:
                continue
    finally:
        os.unlink(temp)
    return read_upload(folder, stored)


def read_upload(folder: Path, stored_name: str) -> StoredUpload | None:
    """The upload stored as ``stored_name`` in ``folder``, or None if there is none."""
    match = STORED_NAME.match(stored_name)
    if not match:
        return None
    try:
        shown = shown_name(base64.urlsafe_b64decode(match["name"]).decode())
        size = (folder / stored_name).stat().st_size
    except (OSError, binascii.Error, UnicodeDecodeError):
        return None
    uploaded = dt.datetime.fromtimestamp(int(match["ns"]) / 1e9, dt.timezone.utc)
    return StoredUpload(stored_name, shown, size, uploaded)


def list_uploads(folder: Path) -> list[StoredUpload]:
    """Every upload in ``folder``, newest first; temporary files are not uploads."""
    if not folder.is_dir():
        return []
    uploads = (read_upload(folder, entry.name) for entry in os.scandir(folder))
    return sorted((u for u in uploads if u), key=lambda u: u.stored_name, reverse=True)


def describe_size(size: int) -> str:
    for unit, scale in (("MB", 1024 * 1024), ("KB", 1024)):
        if size >= scale:
            return f"{round(size / scale, 1):g} {unit}"
    return f"{size} bytes"
