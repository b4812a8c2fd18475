"""The pages as the app serves them: the tutorial's routes, templates and 404s."""

from __future__ import annotations

from support import parse_html


def test_profile_uses_the_tutorial_template(client):
    soup = parse_html(client.get("/users/ada-lovelace/").data)
    assert soup.title.get_text() == "Profile of Ada Lovelace · Wordsmiths"
    assert soup.h2.get_text() == "Ada Lovelace has the following awards:"


def test_unknown_user_is_a_404_page(client):
    response = client.get("/users/nobody/")
    assert response.status_code == 404
    assert parse_html(response.data).h1.get_text() == "Page not found"


def test_unknown_city_says_we_are_not_there(client):
    response = client.get("/stores/atlantis/")
    assert response.status_code == 404
    assert parse_html(response.data).h1.get_text() == "No. We are not located in atlantis"


def test_city_in_the_url_is_escaped(client):
    response = client.get("/stores/<script>alert(1)/")
    assert response.status_code == 404
    assert b"<script>alert" not in response.data
    assert parse_html(response.data).h1.get_text() == "No. We are not located in <script>alert(1)"


def test_every_asset_goes_through_url_for_static(client):
    soup = parse_html(client.get("/").data)
    assets = [tag.get("href") or tag.get("src") for tag in soup.select("link[rel=stylesheet], script[src], img")]
    assert assets and all(asset.startswith("/static/") for asset in assets)
    for asset in assets:
        assert client.get(asset).status_code == 200


def test_nav_marks_the_current_page(client):
    soup = parse_html(client.get("/stores/").data)
    assert soup.select_one("nav a[aria-current=page]").get_text() == "Storefronts"


def test_only_get_is_allowed_on_pages(client):
    assert client.post("/users/").status_code == 405
