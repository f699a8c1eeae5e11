"""What GeoReport reads: categories as services, and petitions as service requests.

Text a person reads is Vietnamese first, then English (`"Đã tiếp nhận / Submitted"`), or the
one language the client's `locale` names. A request shows its public status to anyone (as
`GET /api/v1/petitions/{reference}` does: anyone may hold a reference); its description,
address, coordinates and photo link only to the client whose key sent it, which already has
them. Never contact data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.intake.catalog import Catalog, Category
from services.intake.open311.schemas import (
    Attribute,
    AttributeValue,
    Service,
    ServiceDefinition,
    ServiceRequest,
)
from services.intake.petitions import FINAL_STATUSES, status_label


def said(vi: str, en: str, lang: str | None) -> str:
    if lang == "en":
        return en
    if lang == "vi":
        return vi
    return f"{vi} / {en}"


def service(category: Category, lang: str | None) -> Service:
    return Service(
        service_code=category.id,
        service_name=said(category.name_vi, category.name_en, lang),
        description=f"{category.name_vi} / {category.name_en}",
        metadata=True,
        type="realtime",
        keywords="",
        group="",
    )


def definition(catalog: Catalog, service_code: str, lang: str | None) -> ServiceDefinition:
    """Every service has one attribute: the area the resident lives in, which routing needs
    to find the member who serves it."""
    return ServiceDefinition(
        service_code=service_code,
        attributes=[
            Attribute(
                variable=True,
                code="unit_id",
                datatype="singlevaluelist",
                required=True,
                datatype_description=said("Chọn một khu vực", "Choose one area", lang),
                order=1,
                description=said(
                    "Khóm/ấp, tổ dân phố nơi người dân sống",
                    "Neighbourhood or hamlet, residential group where the resident lives",
                    lang,
                ),
                values=[
                    AttributeValue(key=u.id, name=catalog.path_name(u.id))
                    for u in catalog.selectable_units()
                ],
            )
        ],
    )


def service_request(
    row: Mapping[str, Any], catalog: Catalog, lang: str | None, *, reader_key_id: str | None
) -> ServiceRequest:
    """One petition as GeoReport reads it; `reader_key_id` is the calling client's key."""
    own = reader_key_id is not None and row["key_id"] == reader_key_id
    category = catalog.categories.get(row["category_id"])
    return ServiceRequest(
        service_request_id=row["reference"],
        status="closed" if row["status"] in FINAL_STATUSES else "open",
        status_notes=said(*status_label(row["status"]), lang),
        service_name=(
            said(category.name_vi, category.name_en, lang) if category else row["category_id"]
        ),
        service_code=row["category_id"],
        description=row["description"] if own else None,
        agency_responsible=catalog.path_name(row["unit_id"]),
        service_notice="",
        requested_datetime=row["submitted_at"],
        updated_datetime=row["status_changed_at"],
        expected_datetime=row["due_at"],
        address=row["address_string"] if own else None,
        address_id=row["address_id"] if own else None,
        zipcode=None,
        lat=row["lat"] if own else None,
        long=row["long"] if own else None,
        media_url=row["media_url"] if own else None,
    )


def created_notice(reference: str, lang: str | None) -> str:
    return said(
        f"Đã tiếp nhận phản ánh, mã số {reference}; cán bộ phụ trách địa bàn sẽ xử lý.",
        f"Petition received, reference {reference}; the member serving the area will handle it.",
        lang,
    )
