"""The freeze's table of pages, url -> (file, owner, dependencies, links), kept by route.

Most pages belong to a record (their owner, ``(kind, slug)``), and the pages
of one route differ only by the slug: their URL and their file are the same
text around it, and most of them share their dependencies and their links
(build.py makes equal ones one tuple). Such a page is kept as an entry
``slug -> (dependencies, links)`` in its route's column, the pair shared:
against the URL, the file, the owner and their tuple, about 350 bytes a page
less in the freeze process and in the state. Any other page (a listing page,
a slug its URL does not show as it is) is kept whole, its dependencies and
links each packed into one string: a listing page's are its own (a field or
two of each record it shows, a link to each), and as tuples of strings they
took about 7 KB a listing page, 290 MB at a million users; packed, about
2 KB.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, MutableMapping
from typing import Any

from .dependencies import record_key

# (file relative to the build, owner (kind, slug) or None, dependencies besides the owner's file,
#  files of the build it links to)
Page = tuple[str, Any, tuple[str, ...], tuple[str, ...]]
# (kind, URL before the slug, URL after it, file before the slug, file after it)
Column = tuple[str, str, str, str, str]
# A whole page as kept: its dependencies and its links packed (see _pack)
Kept = tuple[str, Any, str, str]
SEPARATOR = "\0"  # in no file's path and no dependency
PREFILTER_KEYS = 16  # up to this many changed keys, a packed page is first searched for each (see _depends)


class Pages(MutableMapping):
    """``url -> Page``, as a dict would be, with the pages of each route stored in a column."""

    def __init__(self, whole: dict[str, Kept] | None = None,
                 columns: dict[Column, dict[str, tuple]] | None = None):
        self.whole = whole if whole is not None else {}
        self.columns = columns if columns is not None else {}
        self._pairs: dict[tuple, tuple] = {}  # one (dependencies, links) pair for equal ones

    def dumped(self) -> tuple[dict[str, Kept], dict[Column, dict[str, tuple]]]:
        """What the state stores: the whole pages and the columns (see Pages(*dumped))."""
        return self.whole, self.columns

    # ------------------------------------------------------------ one page

    def _find(self, url: str) -> tuple[Column, dict[str, tuple], str] | None:
        """The column and slug of ``url``, if a column holds it."""
        for column, slugs in self.columns.items():
            _, before, after, _, _ = column
            if url.startswith(before) and url.endswith(after) and len(url) > len(before) + len(after):
                slug = url[len(before):len(url) - len(after)]
                if slug in slugs:
                    return column, slugs, slug
        return None

    def __getitem__(self, url: str) -> Page:
        kept = self.whole.get(url)
        if kept is not None:
            return _unpacked(kept)
        found = self._find(url)
        if found is None:
            raise KeyError(url)
        column, slugs, slug = found
        return _page(column, slug, slugs[slug])

    def __contains__(self, url: object) -> bool:
        return url in self.whole or self._find(url) is not None  # type: ignore[arg-type]

    def __setitem__(self, url: str, page: Page) -> None:
        file, owner, dependencies, links = page
        column = _column_of(url, file, owner)
        if column is None:
            self.pop(url, None)
            self.whole[url] = (file, owner, _pack(dependencies), _pack(links))
            return
        slugs = self.columns.get(column)
        if slugs is None or owner[1] not in slugs:  # not there already: maybe elsewhere
            self.pop(url, None)
            slugs = self.columns.setdefault(column, {})
        pair = (dependencies, links)
        slugs[owner[1]] = self._pairs.setdefault(pair, pair)

    def __delitem__(self, url: str) -> None:
        if url in self.whole:
            del self.whole[url]
            return
        found = self._find(url)
        if found is None:
            raise KeyError(url)
        column, slugs, slug = found
        del slugs[slug]
        if not slugs:
            del self.columns[column]

    # ------------------------------------------------------------ every page

    def __len__(self) -> int:
        return len(self.whole) + sum(map(len, self.columns.values()))

    def __iter__(self) -> Iterator[str]:
        yield from self.whole
        for (_, before, after, _, _), slugs in self.columns.items():
            for slug in slugs:
                yield before + slug + after

    def items(self) -> Iterator[tuple[str, Page]]:  # type: ignore[override]
        for url, kept in self.whole.items():
            yield url, _unpacked(kept)
        for column, slugs in self.columns.items():
            _, before, after, _, _ = column
            for slug, pair in slugs.items():
                yield before + slug + after, _page(column, slug, pair)

    def values(self) -> Iterator[Page]:  # type: ignore[override]
        return (page for _, page in self.items())

    def files(self) -> Iterator[str]:
        """Every page's file."""
        for page in self.whole.values():
            yield page[0]
        for (_, _, _, before, after), slugs in self.columns.items():
            for slug in slugs:
                yield before + slug + after

    def has_file(self, file: str, whole_files: set[str]) -> bool:
        """Whether some page is written to ``file``; ``whole_files``: the files of the whole pages."""
        if file in whole_files:
            return True
        for (_, _, _, before, after), slugs in self.columns.items():
            if file.startswith(before) and file.endswith(after) and len(file) > len(before) + len(after):
                if file[len(before):len(file) - len(after)] in slugs:
                    return True
        return False

    def owned(self) -> dict[str, set[str]]:
        """kind -> the slugs of the records that own some page."""
        owners: dict[str, set[str]] = {}
        for _, owner, _, _ in self.whole.values():
            if owner:
                owners.setdefault(owner[0], set()).add(owner[1])
        for (kind, *_), slugs in self.columns.items():
            owners.setdefault(kind, set()).update(slugs)
        return owners

    def depending_on(self, changed: set[str]) -> Iterator[tuple[str, Any]]:
        """(url, owner) of each page that depends on something in ``changed`` (besides its owner's file).

        A column's pages share few dependency tuples: each is tested once.
        """
        for url, (_, owner, dependencies, _) in self.whole.items():
            if _depends(dependencies, changed):
                yield url, owner
        for (kind, before, after, _, _), slugs in self.columns.items():
            tested: dict[int, bool] = {}
            for slug, pair in slugs.items():
                hit = tested.get(id(pair))
                if hit is None:
                    hit = tested[id(pair)] = not changed.isdisjoint(pair[0])
                if hit:
                    yield before + slug + after, (kind, slug)

    def dirty(self, url: str, changed: set[str]) -> bool:
        """Whether the page at ``url`` has to be rendered: it is new, or it depends on something in
        ``changed``, its owner's file included."""
        kept = self.whole.get(url)
        if kept is not None:
            return _depends(kept[2], changed) or bool(kept[1]) and record_key(*kept[1]) in changed
        found = self._find(url)
        if found is None:
            return True
        column, slugs, slug = found
        return not changed.isdisjoint(slugs[slug][0]) or record_key(column[0], slug) in changed

    def kept(self, records: dict[str, dict[str, bytes]], others: Iterable[str]) -> Pages:
        """The pages whose record is still in ``records`` (kind -> slug -> ...), and the others in ``others``."""
        others = set(others)
        whole = {url: page for url, page in self.whole.items()
                 if (page[1][1] in records.get(page[1][0], ()) if page[1] else url in others)}
        columns = {}
        for column, slugs in self.columns.items():
            present = records.get(column[0], {})
            kept = dict(slugs) if present.keys() >= slugs.keys() else {
                slug: pair for slug, pair in slugs.items() if slug in present}
            if kept:
                columns[column] = kept
        return Pages(whole, columns)

    def files_gone_from(self, new: Pages) -> list[str]:
        """The files of the pages whose URLs ``new`` does not have."""
        gone = [page[0] for url, page in self.whole.items() if url not in new]
        for column, slugs in self.columns.items():
            now = new.columns.get(column, {})
            for slug in slugs.keys() - now.keys():
                if column[1] + slug + column[2] not in new:
                    gone.append(column[3] + slug + column[4])
        return gone


def _pack(strings: tuple[str, ...]) -> str:
    """One string for a tuple of them (each led by the separator, so that ("",) is not ())."""
    return "".join(SEPARATOR + string for string in strings)


def _unpack(packed: str) -> tuple[str, ...]:
    return tuple(packed[1:].split(SEPARATOR)) if packed else ()


def _unpacked(kept: Kept) -> Page:
    return kept[0], kept[1], _unpack(kept[2]), _unpack(kept[3])


def _depends(packed: str, changed: set[str]) -> bool:
    """Whether packed dependencies hold a key of ``changed``; an edit changes a few keys, searched for
    first in the packed string: most pages hold none, and are not unpacked."""
    if len(changed) <= PREFILTER_KEYS and not any(key in packed for key in changed):
        return False
    return not changed.isdisjoint(_unpack(packed))


def _page(column: Column, slug: str, pair: tuple) -> Page:
    return column[3] + slug + column[4], (column[0], slug), pair[0], pair[1]


def _column_of(url: str, file: str, owner: Any) -> Column | None:
    """The column a record's page fits in: its URL and its file each show its slug as it is."""
    if not owner:
        return None
    kind, slug = owner
    at, file_at = url.find(slug), file.find(slug)
    if not slug or at < 0 or file_at < 0:
        return None
    return kind, url[:at], url[at + len(slug):], file[:file_at], file[file_at + len(slug):]
