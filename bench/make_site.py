"""Generate a project of N users and M stores from the example site's declarations (site.py),
templates and static files.

A user is content/users/user-NNNNN.yaml (more digits past 99,999 users): the slug is the file name, so there is no
``username:`` field (the record class in site.py refuses unknown fields).
"""

from __future__ import annotations

import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIRST = ["ada", "alan", "barbara", "donald", "edsger", "grace", "guido", "katherine", "ken", "linus"]
LAST = ["lovelace", "turing", "liskov", "knuth", "dijkstra", "hopper", "rossum", "johnson"]
AWARDS = ["Golden Quill", "Spelling Bee Coach of the Year", "Crossword Setter Medal", "Lexicon Prize"]


def user_yaml(number: int, *, bio: str = "Collects word lists and rare dictionaries.", name: str | None = None) -> str:
    first, last = FIRST[number % len(FIRST)], LAST[number // len(FIRST) % len(LAST)]
    awards = "".join(f"  - {AWARDS[(number + i) % len(AWARDS)]}\n" for i in range(number % 3))
    name = name or f"{first.title()} {last.title()} {number}"
    return (f"name: {name}\n"
            f"joined: {2005 + number % 20}-{1 + number % 12:02d}-{1 + number % 28:02d}\n"
            + (f"awards:\n{awards}" if awards else "") + f"bio: {bio}\n")


def store_yaml(number: int) -> str:
    return (f"city: City {number}\nname: Wordsmiths {number}\naddress: |-\n  {number} Main Street\n"
            f"  Town {number}\nhours:\n  Monday to Friday: \"09:00–18:00\"\n  Saturday: closed\n"
            f"phone: +1 555 {number:04d}\n")


def make_site(root: Path, users: int, stores: int = 100) -> Path:
    """Write a project into ``root`` (which must not exist) and return it."""
    root.mkdir(parents=True)
    shutil.copy(REPO / "site.py", root / "site.py")  # the site's collections and routes
    for part in ("templates", "static"):
        shutil.copytree(REPO / part, root / part)
    (root / "content" / "users").mkdir(parents=True)
    (root / "content" / "stores").mkdir()
    shutil.copy(REPO / "content" / "site.yaml", root / "content" / "site.yaml")
    width = max(5, len(str(users - 1)))  # names sort in number order at any size
    for number in range(users):
        (root / "content" / "users" / f"user-{number:0{width}d}.yaml").write_text(user_yaml(number))
    for number in range(stores):
        (root / "content" / "stores" / f"city-{number:03d}.yaml").write_text(store_yaml(number))
    return root
