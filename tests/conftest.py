"""Fixtures of this site's own tests (tests/test_site.py), on top of the engine's pytest plugin.

The plugin (sitegen/testing.py, loaded by pytest without being named here)
gives ``frozen_site`` (the site frozen once per session into a temporary
folder), ``site_content``, ``site_pages`` and ``preview_client``. A site adds
its own fixtures here, written over its collections, as below.
"""

import pytest


@pytest.fixture(scope="session")
def user_pages(frozen_site, site_content):
    """(user, their profile page) for every record in content/users/."""
    return [(user, frozen_site.page_of(user)) for user in site_content.users.values()]


@pytest.fixture(scope="session")
def store_pages(frozen_site, site_content):
    """(store, its storefront page) for every record in content/stores/."""
    return [(store, frozen_site.page_of(store)) for store in site_content.stores.values()]
