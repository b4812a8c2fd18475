"""Night Lectures: talks in a few halls, a fixture site unlike the example.

Its events refer to venues, carry Markdown and an optional poster, and
their listing spans several pages; the contact page is a plain route in
the nav.
"""

from datetime import date

from sitegen import Markdown, Record, Site, StaticFile, render_template

site = Site(__file__)


@site.collection("venues", listing="/venues/")
class Venue(Record):
    name: str
    city: str
    photo: StaticFile | None = None
    about: Markdown = Markdown()


@site.collection("events", listing="/events/", per_page=2, api=True)
class Event(Record):
    title: str
    starts: date
    venue: Venue
    summary: Markdown = Markdown()
    tags: list[str] = []


@site.route("/")
def home():
    return render_template("index.html", events=site.records("events"))


@site.route("/events/<events:event>/")
def event_page(event: Event):
    return render_template("event.html", event=event)


@site.route("/venues/<venues:venue>/")
def venue_page(venue: Venue):
    events = [event for event in site.records("events").values() if event.venue.slug == venue.slug]
    return render_template("venue.html", venue=venue, events=events)


@site.route("/contact/")
def contact():
    return render_template("contact.html")


if __name__ == "__main__":
    site.cli()
