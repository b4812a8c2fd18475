"""This site's own tests, on its frozen output: they hold for any content a site owner writes.

``.venv/bin/python -m pytest tests/test_site.py`` freezes the site once into a
temporary folder (never build/) and checks it. The line below turns on the
engine's generic checks (every record's page shows its fields, links resolve,
the sitemap is complete, nothing preview-only is built, the preview serves
what freeze writes, HTML is well formed, freezing twice gives the same bytes;
see docs/testing.md). The tests after it are this site's own: written over
its collections, never over particular slugs, titles or counts, so that new
content keeps them green and a red one means a broken page.
"""

from sitegen.testing import *  # noqa: F401,F403


def test_every_users_awards_are_listed_on_their_page(user_pages):
    for user, page in user_pages:
        listed = [li.get_text(strip=True) for li in page.soup.select("ul.awards li")]
        assert listed == list(user.awards), f"{page.where}: awards listed {listed}, expected {user.awards}"
        if not user.awards:
            assert f"{user.name} has no awards".casefold() in page.text, f"{page.where}: no 'has no awards'"


def test_the_people_listing_links_every_user_once(frozen_site, user_pages):
    links = [a["href"] for listing in frozen_site.listing("users") for a in listing.soup.select("#user-list a")]
    assert sorted(links) == sorted(frozen_site.href(page.url) for _, page in user_pages)


def test_the_home_page_links_every_store_by_its_city(frozen_site, store_pages):
    cities = {a["href"]: a.get_text(strip=True) for a in frozen_site.page("/").soup.select(".city-list a")}
    for store, page in store_pages:
        assert cities.get(frozen_site.href(page.url)) == store.city, f"the home page has no link to {page.where}"


def test_every_store_page_has_a_phone_link_that_dials_its_number(store_pages):
    for store, page in store_pages:
        phone = page.soup.select_one("a[href^='tel:']")
        assert phone is not None, f"{page.where}: no tel: link"
        assert phone["href"] == "tel:" + store.phone.replace(" ", ""), f"{page.where}: dials {phone['href']}"
