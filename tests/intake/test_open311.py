"""Open311 GeoReport v2: categories as services, create from a form-encoded request, read back
the public status only; errors in GeoReport's own format."""

from __future__ import annotations

from typing import Any

from services.intake.open311 import title_from
from shared.events import PetitionSubmitted
from tests.intake.conftest import Intake
from tests.intake.test_status_view import assigned
from tests.support import eventually

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
}


def is_georeport_error(response: Any, status: int) -> list[str]:
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body, list), body
    assert body
    assert all(set(e) == {"code", "description"} and e["code"] == status for e in body), body
    return [e["description"] for e in body]


async def test_services_are_the_categories_with_the_unit_attribute(intake: Intake) -> None:
    services = (await intake.client.get("/open311/v2/services.json")).json()
    assert [s["service_code"] for s in services][:2] == ["roads_lighting", "environment_sanitation"]
    assert services[0]["service_name"] == "Đường sá, chiếu sáng"
    assert services[0]["metadata"] is True
    english = (await intake.client.get("/open311/v2/services.json?locale=en")).json()
    assert english[0]["service_name"] == "Roads and lighting"

    definition = (await intake.client.get("/open311/v2/services/roads_lighting.json")).json()
    [attribute] = definition["attributes"]
    assert attribute["code"] == "unit_id"
    assert attribute["required"] is True
    assert {"key": "my-hoa-hung-my-khanh-2", "name": "Xã Mỹ Hòa Hưng › Ấp Mỹ Khánh 2"} in (
        attribute["values"]
    )
    is_georeport_error(await intake.client.get("/open311/v2/services/weather.json"), 404)


async def test_a_georeport_request_becomes_a_petition_and_reads_back_public_status(
    intake: Intake,
) -> None:
    created = await intake.client.post("/open311/v2/requests.json", data=CREATE)
    assert created.status_code == 201, created.text
    [receipt] = created.json()
    reference = receipt["service_request_id"]
    assert reference.startswith("PA-")

    [event] = await intake.published(PetitionSubmitted, 1)
    assert event.reference == reference
    assert event.unit_id == "my-thoi-thoi-an-a-to-1"
    assert event.category_id == "roads_lighting"
    assert event.title == "Ổ gà lớn giữa đường"
    assert event.location == "Đường Trần Hưng Đạo (10.370000, 105.430000)"
    assert event.wants_updates is True
    assert "d@example.vn" not in event.model_dump_json()
    contact = await intake.contact(str(event.petition_id))
    assert contact["name"] == "Phạm Văn D"
    assert contact["email"] == "d@example.vn"

    [one] = (await intake.client.get(f"/open311/v2/requests/{reference}.json")).json()
    assert one["service_request_id"] == reference
    assert one["status"] == "open"
    assert one["service_code"] == "roads_lighting"
    assert one["status_notes"] == "Đã tiếp nhận"
    for private in ("description", "address", "lat", "long", "email", "phone", "first_name"):
        assert private not in one
    assert "d@example.vn" not in str(one)
    assert "Ổ gà" not in str(one)

    await intake.publish(assigned(str(event.petition_id), event.occurred_at))

    async def expected() -> Any:
        found = (
            await intake.client.get(
                f"/open311/v2/requests.json?service_request_id={reference},PA-0000-0000&locale=en"
            )
        ).json()
        return found if found and found[0]["expected_datetime"] else None

    [many] = await eventually(expected, what="the deadline shows as expected_datetime")
    assert many["status_notes"] == "Assigned"

    is_georeport_error(await intake.client.get("/open311/v2/requests/PA-0000-0000.json"), 404)
    is_georeport_error(await intake.client.get("/open311/v2/requests.json"), 400)


async def test_bad_georeport_requests_are_errors_in_its_format(intake: Intake) -> None:
    missing = {k: v for k, v in CREATE.items() if k not in ("service_code", "attribute[unit_id]")}
    errors = is_georeport_error(
        await intake.client.post("/open311/v2/requests.json", data=missing), 400
    )
    assert any(e.startswith("service_code:") for e in errors), errors
    assert any(e.startswith("attribute[unit_id]:") for e in errors), errors

    nowhere = {k: v for k, v in CREATE.items() if k not in ("address_string", "lat", "long")}
    errors = is_georeport_error(
        await intake.client.post("/open311/v2/requests.json", data=nowhere), 400
    )
    assert any("address_string" in e for e in errors), errors
    bad_lat = is_georeport_error(
        await intake.client.post("/open311/v2/requests.json", data={**CREATE, "lat": "200"}), 400
    )
    assert any(e.startswith("lat:") for e in bad_lat)
    is_georeport_error(await intake.client.post("/open311/v2/requests.json", json=CREATE), 415)
    assert (await intake.events(PetitionSubmitted)) == []


def test_a_title_is_the_first_line_of_the_description_shortened_at_a_word() -> None:
    assert title_from("Ngắn\nphần sau") == "Ngắn"
    long = title_from("từ " * 60)
    assert long.endswith("…")
    assert len(long) <= 80
    assert not long[:-1].endswith(" ")
