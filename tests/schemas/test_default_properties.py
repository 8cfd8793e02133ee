"""The default properties are declared once (schemas.properties.DEFAULT_PROPERTIES); the copies
that must stay (typed response fields) are checked against it, and the dashboard has none."""

from __future__ import annotations

from pathlib import Path

from query.management import UserCreate, UserUpdate
from schemas.profiles import Profile, UserSummary
from schemas.properties import DEFAULT_PROPERTIES, DEFAULT_PROPERTY_NAMES, IDENTITY_PROPERTIES

DASHBOARD = Path(__file__).parents[2] / "query" / "dashboard" / "app.js"


def test_the_profile_response_has_every_default_property_and_no_other() -> None:
    fields = list(Profile.model_fields)
    start = fields.index(DEFAULT_PROPERTY_NAMES[0])
    assert fields[start : start + len(DEFAULT_PROPERTY_NAMES)] == list(DEFAULT_PROPERTY_NAMES)
    assert all(Profile.model_fields[n].annotation == str | None for n in DEFAULT_PROPERTY_NAMES)


def test_the_users_list_shows_the_identity_properties_and_the_names() -> None:
    shown = [n for n in UserSummary.model_fields if n in DEFAULT_PROPERTIES]
    assert set(IDENTITY_PROPERTIES) - {"phone"} <= set(shown)
    assert {"first_name", "last_name"} <= set(shown)


def test_the_management_bodies_take_every_default_property() -> None:
    for model in (UserCreate, UserUpdate):
        assert set(DEFAULT_PROPERTY_NAMES) <= set(model.model_fields)


def test_every_default_property_has_a_label() -> None:
    assert all(d.label and d.label[0].isupper() for d in DEFAULT_PROPERTIES.values())


def test_the_dashboard_keeps_no_copy_of_the_default_properties() -> None:
    """It renders them from GET /v1/properties; only the users list names its own columns."""
    script = DASHBOARD.read_text()
    columns = {"Customer ID", "First name", "Last name"}
    copied = [d.label for d in DEFAULT_PROPERTIES.values() if f'"{d.label}"' in script]
    assert set(copied) <= columns, copied
    assert '"boolean", "date", "datetime"' not in script  # the types come from the catalog too
