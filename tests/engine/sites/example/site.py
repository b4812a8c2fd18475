"""Wordsmiths: people who love words, and the shops where they buy their dictionaries.

This file is the site: its content types, its pages, then the command line.
``python site.py preview`` serves it while you edit; ``python site.py freeze``
writes it into build/.
"""

from datetime import date

from sitegen import Markdown, Record, Settings, Site, render_template

site = Site(__file__)


@site.settings
class SiteSettings(Settings):
    """content/site.yaml: title, base_url and nav, and these."""

    tagline: str
    about: Markdown


@site.collection("users", listing="/users/", per_page=24, api=True)
class User(Record):
    """content/users/NAME.yaml: one member's profile at /users/NAME/."""

    name: str
    joined: date
    awards: list[str] = []
    bio: Markdown = Markdown()


@site.collection("stores", listing="/stores/")
class Store(Record):
    """content/stores/NAME.yaml: one storefront at /stores/NAME/."""

    city: str
    name: str
    address: str
    hours: dict[str, str]
    phone: str


@site.route("/")
def home():
    return render_template("index.html", users=site.records("users"), stores=site.records("stores"))


@site.route("/about/")
def about():
    return render_template("about.html")


@site.route("/users/<users:user>/")
def user_profile(user: User):
    # The tutorial's profile page: `username`, `date` and `awards` as it names them.
    return render_template("profile.html", user=user, username=user.slug, date=user.joined, awards=user.awards)


@site.route("/stores/<stores:store>/")
def storefront(store: Store):
    return render_template("store.html", store=store)


@site.template_filter()
def initials(name: str) -> str:
    """Up to two initials for a name's avatar: 'Guido van Rossum' -> 'GR'."""
    words = [word for word in name.split() if word[:1].isupper()] or name.split()
    return "".join(word[0] for word in (words[:1] + words[1:][-1:])).upper()


if __name__ == "__main__":
    site.cli()
