"""This site's own tests, on its frozen output: they hold for any content a site owner writes.

``.venv/bin/python -m pytest tests/test_site.py`` freezes the site once into a
temporary folder (never build/) and checks it. The line below turns on the
engine's generic checks (every record's page shows its fields, links resolve,
the sitemap is complete, the preview serves what freeze writes, HTML is
well formed, freezing twice gives the same bytes; see docs/testing.md).
The tests after it are this site's own: written over its collections, never
over particular slugs, titles or counts, so new content keeps them green.
"""

from sitegen.testing import *  # noqa: F401,F403


def test_every_users_awards_are_listed_on_their_page(frozen_site, site_content):
    for user in site_content.users.values():
        page = frozen_site.page_of(user)
        listed = [li.get_text(strip=True) for li in page.soup.select("ul.awards li")]
        assert listed == list(user.awards), f"{page.where}: awards listed {listed}, expected {user.awards}"
        if not user.awards:
            assert f"{user.name} has no awards".casefold() in page.text, f"{page.where}: no 'has no awards'"


def test_the_people_listing_links_every_user_once(frozen_site, site_content):
    links = [a["href"] for page in frozen_site.listing("users") for a in page.soup.select("#user-list a")]
    expected = [frozen_site.href(frozen_site.page_of(user).url) for user in site_content.users.values()]
    assert sorted(links) == sorted(expected)


def test_the_home_page_links_every_store_by_its_city(frozen_site, site_content):
    home = frozen_site.page("/")
    cities = {a["href"]: a.get_text(strip=True) for a in home.soup.select(".city-list a")}
    for store in site_content.stores.values():
        page = frozen_site.page_of(store)
        assert cities.get(frozen_site.href(page.url)) == store.city, f"home page: no link to {page.where}"


def test_every_store_page_has_a_phone_link_that_dials_its_number(frozen_site, site_content):
    for store in site_content.stores.values():
        page = frozen_site.page_of(store)
        phone = page.soup.select_one("a[href^='tel:']")
        assert phone is not None, f"{page.where}: no tel: link"
        assert phone["href"] == "tel:" + store.phone.replace(" ", ""), f"{page.where}: dials {phone['href']}"
