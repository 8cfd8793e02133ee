"""Property-based fuzzing of the /mixpanel endpoints: arbitrary records (as form JSON, form
base64, raw JSON) and arbitrary bytes (plain or gzip) are answered without a 5xx; an error is
Mixpanel's shape with our `errors` list (field and reason), a 200 published at least one event
or reported what it refused. Derandomized, no example database: every run tests the same."""

from __future__ import annotations

import base64
import gzip
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from infra.settings import Settings
from tests.support.fuzzing import SyncIngestClient, fuzz_settings, json_scalars, json_values
from tests.support.publishers import RecordingPublisher

TOKEN = "fuzz-project-token"
SECRET = "fuzz-secret"
SETTINGS = Settings.from_environment(
    {"PS_WRITE_KEYS": f"{TOKEN}:fuzz", "PS_SOURCE_SECRETS": f"{SECRET}:fuzz"}
)
PUBLISHER = RecordingPublisher(SETTINGS)
PATHS = ["/mixpanel/track", "/mixpanel/engage/", "/mixpanel/groups", "/mixpanel/import"]
SECRET_AUTH = {"Authorization": "Basic " + base64.b64encode(f"{SECRET}:".encode()).decode()}

FUZZ = fuzz_settings(100)

scalars = json_scalars()
values = json_values(scalars, max_items=4, max_leaves=16)
RECORD_KEYS = "$set $set_once $add $append $union $remove $unset $delete $time $insert_id"
keys = st.sampled_from(
    [*RECORD_KEYS.split(), "$distinct_id", "$device_id", "$group_key", "$group_id", "x"]
)
EVENT_KEYS = [
    *["distinct_id", "time", "$insert_id", "$device_id", "$user_id", "alias", "$anon_distinct_id"],
    *["$distinct_ids", "Experiment name", "Variant name"],
]
# Records shaped like Mixpanel's: known keys with arbitrary values, and the token.
events = st.fixed_dictionaries(
    {
        "event": st.sampled_from(
            ["E", "$identify", "$create_alias", "$merge", "$experiment_started"]
        )
        | scalars,
        "properties": st.dictionaries(
            st.sampled_from(EVENT_KEYS),
            values,
            max_size=6,
        ).map(lambda p: {**p, "token": TOKEN}),
    }
)
records = st.dictionaries(keys, values, max_size=5).map(lambda r: {**r, "$token": TOKEN})


@pytest.fixture(scope="module")
def client() -> Iterator[SyncIngestClient]:
    with SyncIngestClient(PUBLISHER) as http:
        yield http


def post(
    client: SyncIngestClient, path: str, body: bytes, headers: dict[str, str]
) -> httpx.Response:
    """A POST of `body`, with the server secret where /import needs it."""
    secret = SECRET_AUTH if path.startswith("/mixpanel/import") else {}
    return client.request("POST", path, content=body, headers={**headers, **secret})


def assert_sound(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        body = response.json()
        assert body["error"] and body["status"] not in (1, "OK"), body
        assert body["errors"] and all(e["field"] and e["reason"] for e in body["errors"]), body
        return
    assert response.status_code == 200
    published = [r for r in PUBLISHER.records if r[0] == SETTINGS.events_topic]
    body = response.json() if response.text != "1" else {}
    if not published:  # records that touched only Mixpanel's own properties
        assert not body.get("rejected") and not body.get("failed_records"), body


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@FUZZ
@given(path=st.sampled_from(PATHS), value=st.lists(events | records, max_size=4) | events)
def test_arbitrary_records_never_5xx(client: SyncIngestClient, path: str, value: Any) -> None:
    raw = orjson.dumps(value)
    form_json = f"data={quote(raw.decode())}&verbose=1".encode()
    form_base64 = f"data={quote(base64.b64encode(raw).decode())}".encode()
    for body, headers in ((form_json, FORM), (form_base64, FORM), (raw, {})):
        assert_sound(post(client, path, body, headers))


@FUZZ
@given(path=st.sampled_from(PATHS), value=values)
def test_arbitrary_json_never_5xx(client: SyncIngestClient, path: str, value: Any) -> None:
    assert_sound(post(client, path, f"data={quote(orjson.dumps(value).decode())}".encode(), FORM))


@FUZZ
@given(path=st.sampled_from(PATHS), body=st.binary(max_size=300), gzipped=st.booleans())
def test_arbitrary_bytes_never_5xx(
    client: SyncIngestClient, path: str, body: bytes, gzipped: bool
) -> None:
    headers = {"Content-Encoding": "gzip"} if gzipped else {}
    assert_sound(post(client, path, body, headers))
    assert_sound(post(client, path, gzip.compress(body), {}))
