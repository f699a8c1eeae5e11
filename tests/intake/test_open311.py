"""Open311 GeoReport v2, as the specification shows it (wiki.open311.org/GeoReport_v2): the
service list and definitions, creating a request with an administrator-issued `api_key`, the
request filters, tokens, JSON and XML for every call, and GeoReport's own error format; and a
third-party GeoReport client (the `georeport` package from PyPI) driving intake over real HTTP."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from click.testing import CliRunner
from georeport import GeoReport
from sqlalchemy import select

from services.cli import main
from services.intake.models import open311_keys, open311_requests
from services.intake.open311.keys import active_key_id, hash_key
from services.intake.open311.submission import title_from
from shared.auth import Staff, issue_token
from shared.db import create_engine
from shared.embedded_nats import free_port
from shared.events import PetitionSubmitted
from shared.settings import DEMO_SECRET, normalise_database_url
from tests.intake.conftest import Intake
from tests.intake.test_status_view import assigned
from tests.support import eventually

BASE = "/open311/v2"
# The spec's example POST, with our service code and area attribute.
CREATE = {
    "service_code": "roads_lighting",
    "attribute[unit_id]": "my-thoi-thoi-an-a-to-1",
    "description": "Ổ gà lớn giữa đường\nXe máy dễ té khi trời mưa.",
    "address_string": "Đường Trần Hưng Đạo",
    "lat": "10.3700",
    "long": "105.4300",
    "first_name": "Phạm",
    "last_name": "Văn D",
    "email": "d@example.vn",
    "phone": "0987 654 321",
    "device_id": "tt222111",
    "account_id": "123456",
    "media_url": "https://photos.example.vn/o-ga.jpg",
}
# Every field the specification lists for a service, and for a request read back.
SERVICE_FIELDS = {
    "service_code",
    "service_name",
    "description",
    "metadata",
    "type",
    "keywords",
    "group",
}
REQUEST_FIELDS = {
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "address_id",
    "zipcode",
    "lat",
    "long",
    "media_url",
}
CONTACT = ("d@example.vn", "0987", "Phạm", "Văn D", "tt222111", "123456")


def admin_headers() -> dict[str, str]:
    admin = Staff(username="admin", member_id=None, role="admin", unit_id=None, session_id="s-1")
    return {"Authorization": f"Bearer {issue_token(admin, secret=DEMO_SECRET)}"}


async def issue_key(intake: Intake, client: str = "Ứng dụng phường") -> dict[str, Any]:
    response = await intake.client.post(
        "/api/v1/admin/open311/keys", json={"client": client}, headers=admin_headers()
    )
    assert response.status_code == 201, response.text
    issued: dict[str, Any] = response.json()
    return issued


async def create(intake: Intake, key: str, **fields: str) -> str:
    response = await intake.client.post(
        f"{BASE}/requests.json", data={**CREATE, "api_key": key, **fields}
    )
    assert response.status_code == 201, response.text
    [created] = response.json()
    reference: str = created["service_request_id"]
    return reference


def georeport_errors(response: httpx.Response, status: int) -> list[str]:
    """GeoReport's error list in JSON or XML, every code equal to the HTTP status."""
    assert response.status_code == status, response.text
    if response.headers["content-type"].startswith("text/xml"):
        root = ET.fromstring(response.content)
        assert root.tag == "errors"
        items = [{e.tag: e.text for e in error} for error in root]
        assert all(error.tag == "error" for error in root)
        assert all(i["code"] == str(status) for i in items), items
    else:
        items = response.json()
        assert isinstance(items, list)
        assert all(i["code"] == status for i in items), items
    assert items
    assert all(set(i) == {"code", "description"} for i in items), items
    return [str(i["description"]) for i in items]


def xml_items(response: httpx.Response, root: str, item: str) -> list[dict[str, Any]]:
    assert response.status_code < 300, response.text
    assert response.headers["content-type"] == "text/xml; charset=utf-8"
    assert response.content.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    tree = ET.fromstring(response.content)
    assert tree.tag == root
    assert all(child.tag == item for child in tree)
    return [{e.tag: e.text for e in child} for child in tree]


async def test_services_and_their_definition_in_json_and_xml(intake: Intake) -> None:
    services = (await intake.client.get(f"{BASE}/services.json")).json()
    assert [s["service_code"] for s in services][:2] == ["roads_lighting", "environment_sanitation"]
    assert all(set(s) == SERVICE_FIELDS for s in services)
    assert services[0]["service_name"] == "Đường sá, chiếu sáng / Roads and lighting"
    assert services[0]["metadata"] is True
    assert services[0]["type"] == "realtime"
    english = (await intake.client.get(f"{BASE}/services.json?locale=en")).json()
    assert english[0]["service_name"] == "Roads and lighting"

    as_xml = xml_items(await intake.client.get(f"{BASE}/services.xml"), "services", "service")
    assert [set(s) for s in as_xml] == [SERVICE_FIELDS] * len(services)
    assert as_xml[0]["service_name"] == services[0]["service_name"]
    assert as_xml[0]["metadata"] == "true"
    assert as_xml[0]["keywords"] is None

    definition = (await intake.client.get(f"{BASE}/services/roads_lighting.json")).json()
    assert definition["service_code"] == "roads_lighting"
    [attribute] = definition["attributes"]
    assert attribute["code"] == "unit_id"
    assert attribute["datatype"] == "singlevaluelist"
    assert attribute["required"] is True
    assert attribute["variable"] is True
    assert attribute["description"].startswith("Khóm/ấp, tổ dân phố")
    assert {"key": "my-hoa-hung-my-khanh-2", "name": "Xã Mỹ Hòa Hưng › Ấp Mỹ Khánh 2"} in (
        attribute["values"]
    )
    response = await intake.client.get(f"{BASE}/services/roads_lighting.xml")
    tree = ET.fromstring(response.content)
    assert tree.tag == "service_definition"
    assert tree.findtext("service_code") == "roads_lighting"
    [xml_attribute] = tree.findall("attributes/attribute")
    assert xml_attribute.findtext("required") == "true"
    values = xml_attribute.findall("values/value")
    assert len(values) == len(attribute["values"])
    assert values[0].findtext("key") == attribute["values"][0]["key"]

    for path in ("services/weather.json", "services/weather.xml"):
        [error] = georeport_errors(await intake.client.get(f"{BASE}/{path}"), 404)
        assert "weather" in error
    georeport_errors(await intake.client.get(f"{BASE}/services.csv"), 400)
    georeport_errors(await intake.client.get(f"{BASE}/nothing.xml"), 404)
    not_allowed = await intake.client.put(f"{BASE}/services.xml")
    georeport_errors(not_allowed, 405)
    assert not_allowed.headers["allow"] == "GET"


async def test_service_discovery_names_the_endpoint_and_its_formats(intake: Intake) -> None:
    found = (await intake.client.get(f"{BASE}/discovery.json")).json()
    assert set(found) == {"changeset", "contact", "key_service", "endpoints"}
    [endpoint] = found["endpoints"]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["url"] == f"http://intake.test{BASE}"
    assert endpoint["formats"] == ["text/xml", "application/json"]
    tree = ET.fromstring((await intake.client.get(f"{BASE}/discovery.xml")).content)
    assert tree.tag == "discovery"
    assert [f.text for f in tree.findall("endpoints/endpoint/formats/format")] == [
        "text/xml",
        "application/json",
    ]
    georeport_errors(await intake.client.get(f"{BASE}/discovery.yaml"), 400)


async def test_administrators_issue_list_and_revoke_keys(intake: Intake) -> None:
    url = "/api/v1/admin/open311/keys"
    assert (await intake.client.get(url)).status_code == 401
    member = Staff(username="m", member_id="m1", role="member", unit_id="my-thoi", session_id="s-2")
    as_member = {"Authorization": f"Bearer {issue_token(member, secret=DEMO_SECRET)}"}
    refused = await intake.client.post(url, json={"client": "x"}, headers=as_member)
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"

    issued = await issue_key(intake, "Ứng dụng Mỹ Thới")
    assert issued["key"].startswith("o311_")
    assert issued["key_prefix"] == issued["key"][:12]
    listed = (await intake.client.get(url, headers=admin_headers())).json()
    assert [k["client"] for k in listed] == ["Ứng dụng Mỹ Thới"]
    assert listed[0]["created_by"] == "admin"
    assert listed[0]["revoked_at"] is None
    assert issued["key"] not in str(listed)
    async with intake.runtime.engine.connect() as conn:
        stored = (await conn.execute(select(open311_keys))).mappings().one()
    assert stored["key_hash"] == hash_key(issued["key"])
    assert issued["key"] not in str(dict(stored))

    blank = await intake.client.post(url, json={"client": "  "}, headers=admin_headers())
    assert blank.status_code == 422
    deleted = await intake.client.delete(f"{url}/{issued['id']}", headers=admin_headers())
    assert deleted.status_code == 204
    again = await intake.client.delete(f"{url}/{issued['id']}", headers=admin_headers())
    assert again.status_code == 204
    [revoked] = (await intake.client.get(url, headers=admin_headers())).json()
    assert revoked["revoked_at"] is not None
    unknown = await intake.client.delete(f"{url}/nope", headers=admin_headers())
    assert unknown.status_code == 404


async def test_creating_needs_a_valid_unrevoked_key(intake: Intake) -> None:
    missing = georeport_errors(await intake.client.post(f"{BASE}/requests.json", data=CREATE), 403)
    assert missing[0].startswith("api_key:")
    wrong = {**CREATE, "api_key": "o311_guessed"}
    georeport_errors(await intake.client.post(f"{BASE}/requests.xml", data=wrong), 403)

    issued = await issue_key(intake)
    in_query = await intake.client.post(
        f"{BASE}/requests.json?api_key={issued['key']}", data=CREATE
    )
    assert in_query.status_code == 201, in_query.text
    await intake.client.delete(
        f"/api/v1/admin/open311/keys/{issued['id']}", headers=admin_headers()
    )
    revoked = {**CREATE, "api_key": issued["key"]}
    georeport_errors(await intake.client.post(f"{BASE}/requests.json", data=revoked), 403)
    # Reading needs no key, but a key that does not work is refused rather than ignored.
    georeport_errors(await intake.client.get(f"{BASE}/requests.json?api_key=nope"), 403)
    assert len(await intake.published(PetitionSubmitted, 1)) == 1


async def test_a_created_request_is_a_petition_like_the_forms_and_reads_back(
    intake: Intake,
) -> None:
    issued = await issue_key(intake)
    response = await intake.client.post(
        f"{BASE}/requests.xml", data={**CREATE, "api_key": issued["key"]}
    )
    [created] = xml_items(response, "service_requests", "request")
    assert response.status_code == 201
    assert set(created) == {"service_request_id", "token", "service_notice", "account_id"}
    reference = created["service_request_id"]
    assert reference.startswith("PA-")
    assert reference in created["service_notice"]
    assert created["account_id"] is None

    # The same event, contact and tracking link as a petition from the form.
    [event] = await intake.published(PetitionSubmitted, 1)
    assert (event.reference, event.unit_id, event.category_id) == (
        reference,
        "my-thoi-thoi-an-a-to-1",
        "roads_lighting",
    )
    assert event.title == "Ổ gà lớn giữa đường"
    assert event.location == "Đường Trần Hưng Đạo (10.370000, 105.430000)"
    assert event.wants_updates is True
    assert "d@example.vn" not in event.model_dump_json()
    contact = await intake.contact(str(event.petition_id))
    assert contact["name"] == "Phạm Văn D"
    assert contact["email"] == "d@example.vn"
    assert contact["tracking_url"].startswith("http://intake.test/track/")

    own_url = f"{BASE}/requests/{reference}.json?api_key={issued['key']}"
    [own] = (await intake.client.get(own_url)).json()
    assert set(own) == REQUEST_FIELDS
    assert own["service_request_id"] == reference
    assert (own["status"], own["status_notes"]) == ("open", "Đã tiếp nhận / Submitted")
    assert own["description"] == "Ổ gà lớn giữa đường\nXe máy dễ té khi trời mưa."
    assert (own["address"], own["lat"], own["long"]) == ("Đường Trần Hưng Đạo", 10.37, 105.43)
    assert own["media_url"] == "https://photos.example.vn/o-ga.jpg"
    assert own["agency_responsible"] == "Phường Mỹ Thới › Khóm Thới An A › Tổ dân phố 1"
    assert own["requested_datetime"].endswith("Z")
    assert own["expected_datetime"] is None

    [public] = (await intake.client.get(f"{BASE}/requests/{reference}.json")).json()
    assert set(public) == REQUEST_FIELDS
    assert all(public[k] is None for k in ("description", "address", "lat", "long", "media_url"))
    as_xml = await intake.client.get(f"{BASE}/requests/{reference}.xml?api_key={issued['key']}")
    [xml_own] = xml_items(as_xml, "service_requests", "request")
    assert set(xml_own) == REQUEST_FIELDS
    assert xml_own["lat"] == "10.37"
    assert xml_own["zipcode"] is None
    for body in (str(own), str(public), as_xml.text):
        assert not any(private in body for private in CONTACT), body

    token = created["token"]
    [answer] = (await intake.client.get(f"{BASE}/tokens/{token}.json")).json()
    assert answer == {"service_request_id": reference, "token": token}
    [xml_answer] = xml_items(
        await intake.client.get(f"{BASE}/tokens/{token}.xml"), "service_requests", "request"
    )
    assert xml_answer["service_request_id"] == reference
    georeport_errors(await intake.client.get(f"{BASE}/tokens/unknown.json"), 404)
    georeport_errors(await intake.client.get(f"{BASE}/requests/PA-0000-0000.xml"), 404)

    await intake.publish(assigned(str(event.petition_id), event.occurred_at))

    async def deadline() -> Any:
        [found] = (await intake.client.get(f"{BASE}/requests/{reference}.json?locale=en")).json()
        return found if found["expected_datetime"] else None

    assert (await eventually(deadline, what="the deadline as expected_datetime"))[
        "status_notes"
    ] == "Assigned"


async def test_requests_are_filtered_as_the_specification_says(intake: Intake) -> None:
    issued = await issue_key(intake)
    old = await create(intake, issued["key"])
    intake.clock.advance(timedelta(days=100))
    road = await create(intake, issued["key"])
    sanitation = await create(intake, issued["key"], service_code="environment_sanitation")
    form = await intake.submit()
    withdrawn = await intake.client.post(
        f"/api/v1/track/{form['tracking_token']}/withdraw", json={"reason": "Đã tự sửa"}
    )
    assert withdrawn.status_code == 200, withdrawn.text

    key = f"api_key={issued['key']}"
    # Without a key a list leaves out what residents sent by the form (they did not ask to be
    # listed); ids given by name are read all the same.
    anonymous = await intake.client.get(f"{BASE}/requests.json")
    assert [r["service_request_id"] for r in anonymous.json()] == [sanitation, road]
    by_id = await intake.client.get(f"{BASE}/requests.json?service_request_id={form['reference']}")
    assert [r["service_request_id"] for r in by_id.json()] == [form["reference"]]

    async def ids(query: str) -> list[str]:
        response = await intake.client.get(f"{BASE}/requests.json?{query}&{key}")
        assert response.status_code == 200, response.text
        return [r["service_request_id"] for r in response.json()]

    # The last 90 days by default, newest first.
    assert await ids("") == [form["reference"], sanitation, road]
    # The form's petition is a roads one too: every channel's petitions are requests.
    assert await ids("service_code=roads_lighting") == [form["reference"], road]
    assert await ids("service_code=environment_sanitation,other") == [sanitation]
    assert await ids("status=closed") == [form["reference"]]
    assert await ids("status=open") == [sanitation, road]
    assert await ids("status=open,closed") == [form["reference"], sanitation, road]
    now = intake.clock.now()
    long_ago = (now - timedelta(days=120)).isoformat().replace("+00:00", "Z")
    then = (now - timedelta(days=50)).isoformat().replace("+00:00", "Z")
    assert await ids(f"start_date={long_ago}&end_date={then}") == [old]
    assert await ids(f"end_date={then}") == [old]
    assert await ids(f"start_date={long_ago}") == [old]
    # Ids override every other argument, in the order asked, as people type them.
    assert await ids(f"service_request_id={old.lower()},{road},PA-0000-0000&status=closed") == [
        old,
        road,
    ]
    xml = await intake.client.get(f"{BASE}/requests.xml?service_code=environment_sanitation&{key}")
    assert [r["service_request_id"] for r in xml_items(xml, "service_requests", "request")] == [
        sanitation
    ]
    assert (
        xml_items(
            await intake.client.get(f"{BASE}/requests.xml?service_code=none&{key}"),
            "service_requests",
            "request",
        )
        == []
    )

    # Arguments that match nothing never reach the database as they are (PostgreSQL refuses NUL).
    assert await ids("service_code=weather%00") == []
    georeport_errors(await intake.client.get(f"{BASE}/tokens/a%00b.json"), 404)

    far = (now - timedelta(days=200)).isoformat().replace("+00:00", "Z")
    for query, named in [
        (f"start_date={far}&end_date={then}", "start_date, end_date"),
        (f"start_date={then}&end_date={far}", "end_date"),
        ("start_date=yesterday", "start_date"),
        ("end_date=2026-01-01T00:00:00", "end_date"),
        ("status=pending", "status"),
        ("start_date=0001-01-01T00:00:00%2B07:00", "start_date"),
        ("end_date=9999-12-31T23:59:59Z", "end_date"),
    ]:
        answer = await intake.client.get(f"{BASE}/requests.json?{query}&{key}")
        errors = georeport_errors(answer, 400)
        assert errors[0].startswith(named), (query, errors)


async def test_a_jurisdiction_other_than_ours_is_not_found(intake: Intake) -> None:
    settings = intake.app.state.settings
    intake.app.state.settings = settings.model_copy(
        update={"open311_jurisdiction_id": "my-thoi.angiang.gov.vn"}
    )
    issued = await issue_key(intake)
    ours = {**CREATE, "api_key": issued["key"], "jurisdiction_id": "my-thoi.angiang.gov.vn"}
    assert (await intake.client.post(f"{BASE}/requests.json", data=ours)).status_code == 201
    theirs = {**ours, "jurisdiction_id": "city.gov"}
    [error] = georeport_errors(await intake.client.post(f"{BASE}/requests.xml", data=theirs), 404)
    assert error.startswith("jurisdiction_id city.gov")
    for path in ("services.json", "services/other.xml", "requests.json", "tokens/x.json"):
        georeport_errors(await intake.client.get(f"{BASE}/{path}?jurisdiction_id=city.gov"), 404)
    left_out = await intake.client.get(f"{BASE}/services.json")
    assert left_out.status_code == 200
    named = await intake.client.get(f"{BASE}/services.json?jurisdiction_id=my-thoi.angiang.gov.vn")
    assert named.status_code == 200


async def test_bad_requests_are_errors_in_its_format_and_store_nothing(intake: Intake) -> None:
    key = (await issue_key(intake))["key"]
    url = f"{BASE}/requests.json"
    missing = {k: v for k, v in CREATE.items() if k not in ("service_code", "attribute[unit_id]")}
    errors = georeport_errors(await intake.client.post(url, data={**missing, "api_key": key}), 400)
    assert any(e.startswith("service_code:") for e in errors), errors
    assert any(e.startswith("attribute[unit_id]:") for e in errors), errors

    nowhere = {k: v for k, v in CREATE.items() if k not in ("address_string", "lat", "long")}
    errors = georeport_errors(await intake.client.post(url, data={**nowhere, "api_key": key}), 400)
    assert any("address_string" in e for e in errors), errors
    for field, value in [("lat", "200"), ("long", "east"), ("media_url", "javascript:alert(1)")]:
        bad = {**CREATE, "api_key": key, field: value}
        errors = georeport_errors(await intake.client.post(url, data=bad), 400)
        assert errors[0].startswith(f"{field}:"), errors
    by_address_id = {**nowhere, "api_key": key, "address_id": "VN-AG-1234"}
    assert (await intake.client.post(url, data=by_address_id)).status_code == 201
    georeport_errors(await intake.client.post(url, json={**CREATE, "api_key": key}), 415)
    huge = {**CREATE, "api_key": key, "description": "x" * 70_000}
    georeport_errors(await intake.client.post(url, data=huge), 413)
    for control_only in ("\x01", "\x00", "\u200b\x7f"):
        blank = {**CREATE, "api_key": key, "description": control_only}
        errors = georeport_errors(await intake.client.post(url, data=blank), 400)
        assert any(e.startswith("description:") for e in errors), errors
    [only] = await intake.published(PetitionSubmitted, 1)
    async with intake.runtime.engine.connect() as conn:
        [row] = (await conn.execute(select(open311_requests))).mappings().all()
    assert row["address_id"] == "VN-AG-1234"
    assert row["petition_id"] == str(only.petition_id)


def test_a_title_is_the_first_line_of_the_description_shortened_at_a_word() -> None:
    assert title_from("Ngắn\nphần sau") == "Ngắn"
    assert title_from("\x01") == ""
    long = title_from("từ " * 60)
    assert long.endswith("…")
    assert len(long) <= 80
    assert not long[:-1].endswith(" ")


@pytest.fixture
async def served(intake: Intake) -> AsyncIterator[str]:
    """The test's intake app behind a real HTTP server on 127.0.0.1 (its lifespan already
    runs in the `intake` fixture)."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(intake.app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    try:
        await eventually(lambda: _started(server), what="uvicorn listening")
        yield f"http://127.0.0.1:{port}{BASE}"
    finally:
        server.should_exit = True
        await task


async def _started(server: uvicorn.Server) -> bool:
    return server.started


async def test_a_third_party_georeport_client_reads_what_it_and_others_created(
    intake: Intake, served: str
) -> None:
    settings = intake.app.state.settings
    intake.app.state.settings = settings.model_copy(
        update={"open311_jurisdiction_id": "my-thoi.angiang.gov.vn"}
    )
    key = (await issue_key(intake))["key"]
    # The `georeport` package reads only; creating goes over the same HTTP server.
    async with httpx.AsyncClient() as http:
        posted = await http.post(f"{served}/requests.json", data={**CREATE, "api_key": key})
    assert posted.status_code == 201, posted.text
    [created] = posted.json()
    reference = created["service_request_id"]

    for output in ("json", "xml"):
        client = GeoReport(served, jurisdiction="my-thoi.angiang.gov.vn", output_format=output)
        services = await asyncio.to_thread(client.get_service_list)
        assert services[0]["service_code"] == "roads_lighting"
        assert len(services) == 8
        definition = await asyncio.to_thread(client.get_service_definition, "roads_lighting")
        attributes = definition["attributes"]
        attribute = attributes[0] if output == "json" else attributes["attribute"]
        assert attribute["code"] == "unit_id"
        one = await asyncio.to_thread(client.get_service_request, reference)
        assert one["service_request_id"] == reference
        assert one["status"] == "open"
        found = await asyncio.to_thread(
            client.get_service_requests, service_code="roads_lighting", status="open"
        )
        found = found if isinstance(found, list) else [found]
        assert [r["service_request_id"] for r in found] == [reference]
        by_id = await asyncio.to_thread(client.get_service_requests, service_request_id=reference)
        by_id = by_id if isinstance(by_id, list) else [by_id]
        assert by_id[0]["service_code"] == "roads_lighting"

    elsewhere = GeoReport(served, jurisdiction="city.gov")
    with pytest.raises(Exception, match="404"):
        await asyncio.to_thread(elsewhere.get_service_list)
    missing = GeoReport(served, jurisdiction="my-thoi.angiang.gov.vn")
    with pytest.raises(Exception, match="404"):
        await asyncio.to_thread(missing.get_service_request, "PA-0000-0000")
    started = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    assert await asyncio.to_thread(missing.get_service_requests, start_date=started) == []
    # A petition sent by the form is followed by its reference, never listed without a key.
    form = await intake.submit()
    followed = await asyncio.to_thread(missing.get_service_request, form["reference"])
    assert followed["service_request_id"] == form["reference"]
    listed = await asyncio.to_thread(missing.get_service_requests, service_code="roads_lighting")
    listed = listed if isinstance(listed, list) else [listed]
    assert [r["service_request_id"] for r in listed] == [reference]


def test_an_administrator_issues_a_key_from_the_command_line(tmp_path: Path) -> None:
    """`petitions open311 key create --client NAME` prints the key once; it works for POST
    (the same hash), `list` never shows it, and `revoke` refuses it from then on."""
    env = {"PETITIONS_INTAKE_DATABASE_URL": f"sqlite:///{tmp_path}/intake.db"}
    runner = CliRunner()
    created = runner.invoke(main, ["open311", "key", "create", "--client", "Ứng dụng"], env=env)
    assert created.exit_code == 0, created.output
    key = created.stdout.splitlines()[1]
    assert key.startswith("o311_")
    listed = runner.invoke(main, ["open311", "key", "list"], env=env)
    assert listed.exit_code == 0, listed.output
    assert "Ứng dụng" in listed.stdout
    assert key not in listed.stdout
    key_id = listed.stdout.split()[0]

    async def stored() -> tuple[str | None, Any]:
        engine = create_engine(normalise_database_url(env["PETITIONS_INTAKE_DATABASE_URL"]))
        try:
            async with engine.connect() as conn:
                row = (await conn.execute(select(open311_keys))).mappings().one()
            return await active_key_id(engine, key), row
        finally:
            await engine.dispose()

    active, row = asyncio.run(stored())
    assert active == key_id
    assert row["key_hash"] == hash_key(key)
    assert row["created_by"].startswith("cli:")
    revoked = runner.invoke(main, ["open311", "key", "revoke", key_id], env=env)
    assert revoked.exit_code == 0, revoked.output
    assert asyncio.run(stored())[0] is None
    unknown = runner.invoke(main, ["open311", "key", "revoke", "nope"], env=env)
    assert unknown.exit_code == 1
    blank = runner.invoke(main, ["open311", "key", "create", "--client", " "], env=env)
    assert blank.exit_code == 1


async def test_a_body_over_the_limit_is_refused_as_a_georeport_error(intake: Intake) -> None:
    """Declared too large: refused unread, in the format a GeoReport client parses."""
    big = b"description=" + b"x" * (intake.app.state.settings.max_body_bytes + 1)
    answer = await intake.client.post(
        "/open311/v2/requests.json",
        content=big,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 413
    assert answer.headers["content-type"].startswith("application/json")
    [error] = answer.json()
    assert error["code"] == 413
