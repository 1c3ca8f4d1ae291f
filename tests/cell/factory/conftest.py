"""Shared fixtures of the factory tests: a small site (keys, signed registry) made once per module."""

import pytest

from gluecell.cell.factory.crypto import load_identity
from gluecell.cell.factory.site import create_site

MEMBERS = [("manager", "manager", ()), ("operator-1", "operator", ()), ("customer-1", "customer", ()),
           ("customer-2", "customer", ())] + [(f"cell-{i}", "cell", ("spray-upper", "inspect")) for i in range(1, 6)]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return create_site(tmp_path_factory.mktemp("site"), MEMBERS, broker_files=False)


@pytest.fixture(scope="module")
def admin(site):
    return load_identity(site.path / "admin.key")
