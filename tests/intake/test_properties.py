"""No bad input on a public path answers 5xx: Hypothesis feeds every field of the resident's
form, the JSON API, Open311 GeoReport and the resident's actions on the tracking page (API and
page) with control, bidi and zero-width characters, oversized and empty values, wrong types and
broken encodings, against the real app and database (SQLite and PostgreSQL).

A refusal is a 4xx in the form of its path: problem details on the JSON API, GeoReport errors on
Open311, a page (the form re-shown with its errors) on the pages."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from services.intake.models import petitions
from tests.intake.conftest import VALID, Intake
from tests.intake.test_open311 import CREATE, issue_key
from tests.intake.test_web import FORM

# Few examples per endpoint and no deadline: the whole module stays within a minute or two on a
# loaded machine, on both databases. Function-scoped fixtures are deliberate: one app serves all
# of a test's examples, as one server serves many residents.
EXAMPLES = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# What a keyboard, a copy-paste or an attacker puts in a text field that printable ASCII lacks:
# C0/C1 controls (NUL, which PostgreSQL refuses), bidi overrides and isolates, zero-width and
# joiners, BOM, line/paragraph separators, a combining accent, Vietnamese, an emoji, U+FFFD.
NASTY = (
    "\x00\x01\x08\t\n\x0b\x0c\r\x1b\x7f\x85\xa0"
    "\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
    "\u2028\u2029\ufeff\u0301\ufffd\U0001f600"
    "ệĐđ aZ09@.+-_/<>&\"'%;"
)
SIZES = [0, 1, 2, 80, 81, 100, 101, 200, 201, 254, 255, 300, 301, 2000, 2001, 5000, 5001, 70_000]


def _texts(sizes: list[int]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(max_size=40),
        st.text(alphabet=st.sampled_from(NASTY), max_size=40),
        st.builds(
            lambda c, n: c * n,
            st.sampled_from(["x", "ệ", "\u200b", "\x01", " ", "\u202e", "9"]),
            st.sampled_from(sizes),
        ),
    )


texts = _texts(SIZES)
# In a URL: a client cannot send one longer than about 64 kB (and servers cap far lower).
url_texts = _texts([n for n in SIZES if n <= 2001])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=6,
)
raw_bodies = st.one_of(
    st.binary(max_size=300),
    st.sampled_from([b"\xff\xfe", b"%ff%fe=%c3", b"a=%00&b=\xc3\x28", b"=" * 50, b"&&&", b"{"]),
)


def assert_no_server_error(response: httpx.Response, *, kind: str) -> None:
    """Below 500, and a refusal in the form its path speaks."""
    assert response.status_code < 500, (response.status_code, response.text[:500])
    if response.status_code < 400 or response.status_code in (404, 405):
        return
    content_type = response.headers.get("content-type", "")
    if kind == "api":
        assert content_type.startswith("application/problem+json"), content_type
        assert "title" in response.json()
    elif kind == "open311":
        assert content_type.startswith(("application/json", "application/xml", "text/xml")), (
            response.status_code,
            response.text[:300],
        )
    else:
        assert content_type.startswith("text/html"), content_type


def _fields(base: dict[str, Any], values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The valid `base` with one field replaced (most examples: every other field valid, so
    the value reaches as far as it can, the database included), or several replaced, dropped
    and one unknown added."""
    one = st.builds(lambda k, v: {**base, k: v}, st.sampled_from(sorted(base)), values)
    several = st.builds(
        lambda changed, dropped, extra: {
            **{k: v for k, v in base.items() if k not in dropped},
            **changed,
            **extra,
        },
        st.dictionaries(st.sampled_from(sorted(base)), values, max_size=4),
        st.sets(st.sampled_from(sorted(base)), max_size=2),
        st.dictionaries(st.text(max_size=10), values, max_size=1),
    )
    return st.one_of(one, one, several)


@EXAMPLES
@given(body=_fields(VALID, json_values) | json_values, key=st.none() | texts)
async def test_the_json_api_submission(intake: Intake, body: Any, key: str | None) -> None:
    headers = [(b"Content-Type", b"application/json")]
    raw_key = _header(key) if key is not None else None
    if raw_key is not None:
        headers.append((b"Idempotency-Key", raw_key))
    response = await intake.client.post(
        "/api/v1/petitions", content=json.dumps(body).encode(), headers=headers
    )
    assert_no_server_error(response, kind="api")


@EXAMPLES
@given(raw=raw_bodies, content_type=st.sampled_from(["application/json", "text/plain", ""]))
async def test_the_json_api_with_broken_bodies(
    intake: Intake, raw: bytes, content_type: str
) -> None:
    response = await intake.client.post(
        "/api/v1/petitions", content=raw, headers={"Content-Type": content_type}
    )
    assert_no_server_error(response, kind="api")


@EXAMPLES
@given(form=_fields({**FORM, "name": "A", "email": "a@b.vn", "phone": "0912345678"}, texts))
async def test_the_residents_form(intake: Intake, form: dict[str, str]) -> None:
    response = await intake.client.post("/", data=form)
    assert_no_server_error(response, kind="page")
    if response.status_code == 422:
        # The form comes back with its errors and what the resident typed.
        assert 'name="submission_key"' in response.text


@EXAMPLES
@given(raw=raw_bodies, lang=st.none() | url_texts)
async def test_the_residents_form_with_broken_bodies(
    intake: Intake, raw: bytes, lang: str | None
) -> None:
    response = await intake.client.post(
        "/",
        content=raw,
        params={"lang": lang} if lang is not None else None,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_no_server_error(response, kind="page")


@EXAMPLES
@given(segment=url_texts, lang=st.none() | url_texts)
async def test_paths_that_take_a_token_or_a_reference(
    intake: Intake, segment: str, lang: str | None
) -> None:
    path = quote(segment, safe="")
    params = {"lang": lang} if lang is not None else None
    for url, kind in (
        (f"/track/{path}", "page"),
        (f"/track/{path}/withdraw", "page"),
        (f"/api/v1/track/{path}", "api"),
        (f"/api/v1/petitions/{path}", "api"),
        (f"/open311/v2/requests/{path}.json", "open311"),
        (f"/open311/v2/tokens/{path}.xml", "open311"),
        (f"/open311/v2/services/{path}.json", "open311"),
    ):
        assert_no_server_error(await intake.client.get(url, params=params), kind=kind)


# The resident's actions, each with the petition in the state that lets the action reach the
# database (the text a resident types is stored only then).
ACTIONS: dict[str, dict[str, Any]] = {
    "feedback": {"resolved": True, "comment": "Cảm ơn"},
    "answer": {"question_id": "", "answer": "Cột số 7"},
    "escalate": {"comment": "Quá hạn rồi"},
    "withdraw": {"reason": "Đã tự sửa"},
}


async def _petition_ready_for(intake: Intake, action: str) -> tuple[str, str]:
    """A new petition in the state `action` expects; its token and open question's id."""
    body = await intake.submit()
    question_id = str(uuid.uuid4())
    now = intake.clock.now()
    state: dict[str, dict[str, Any]] = {
        "feedback": {"status": "resolved", "resolution_event_id": str(uuid.uuid4())},
        "answer": {
            "status": "waiting_for_resident",
            "question_id": question_id,
            "question_event_id": str(uuid.uuid4()),
            "question_text": "Cột số mấy?",
        },
        "escalate": {"status": "assigned", "rung": 0, "due_at": now - timedelta(hours=1)},
        "withdraw": {},
    }
    if state[action]:
        async with intake.runtime.engine.begin() as conn:
            await conn.execute(
                update(petitions)
                .where(petitions.c.id == body["petition_id"])
                .values(**state[action])
            )
    return body["tracking_token"], question_id


@EXAMPLES
@given(
    action=st.sampled_from(sorted(ACTIONS)),
    body=st.data(),
    as_page=st.booleans(),
)
async def test_the_residents_actions(
    intake: Intake, action: str, body: st.DataObject, as_page: bool
) -> None:
    token, question_id = await _petition_ready_for(intake, action)
    valid = {**ACTIONS[action]}
    if action == "answer":
        valid["question_id"] = question_id
    if as_page:
        page_valid = {**valid, "resolved": "yes"} if action == "feedback" else valid
        form = body.draw(_fields({k: str(v) for k, v in page_valid.items()}, texts))
        response = await intake.client.post(f"/track/{token}/{action}", data=form)
        assert_no_server_error(response, kind="page")
        return
    payload = body.draw(_fields(valid, json_values) | json_values)
    response = await intake.client.post(
        f"/api/v1/track/{token}/{action}",
        content=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert_no_server_error(response, kind="api")


@EXAMPLES
@given(
    fields=_fields(CREATE, texts),
    as_xml=st.booleans(),
    jurisdiction=st.none() | texts,
)
async def test_open311_create(
    intake: Intake, open311_key: str, fields: dict[str, str], as_xml: bool, jurisdiction: str | None
) -> None:
    data = {**fields, "api_key": open311_key}
    if jurisdiction is not None:
        data["jurisdiction_id"] = jurisdiction
    url = f"/open311/v2/requests.{'xml' if as_xml else 'json'}"
    assert_no_server_error(await intake.client.post(url, data=data), kind="open311")


@EXAMPLES
@given(raw=raw_bodies)
async def test_open311_create_with_broken_bodies(intake: Intake, raw: bytes) -> None:
    response = await intake.client.post(
        "/open311/v2/requests.json",
        content=raw,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_no_server_error(response, kind="open311")


@EXAMPLES
@given(
    query=st.dictionaries(
        st.sampled_from(
            [
                "service_request_id",
                "service_code",
                "start_date",
                "end_date",
                "status",
                "locale",
                "jurisdiction_id",
                "api_key",
                "page",
            ]
        ),
        url_texts,
        max_size=4,
    ),
    endpoint=st.sampled_from(
        ["requests.json", "requests.xml", "services.json", "services.xml", "discovery.json"]
    ),
)
async def test_open311_reads(
    intake: Intake, open311_key: str, query: dict[str, str], endpoint: str
) -> None:
    if query.get("api_key") == "":
        query["api_key"] = open311_key
    response = await intake.client.get(f"/open311/v2/{endpoint}", params=query)
    assert_no_server_error(response, kind="open311")


def _header(value: str) -> bytes | None:
    """The value as a client may send it (any bytes but line breaks and NUL), or None."""
    if any(c in value for c in "\r\n\x00"):
        return None
    return value.strip().encode()


@pytest.fixture
async def open311_key(intake: Intake) -> str:
    """The key of an administrator-issued GeoReport client."""
    return str((await issue_key(intake))["key"])
