"""GeoReport v2's shapes, with the specification's field names, as pydantic models: the JSON
answer and the OpenAPI contract; `render.py` writes the same models as XML."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

Format = Literal["json", "xml"]
ServiceType = Literal["realtime", "batch", "blackbox"]
RequestStatus = Literal["open", "closed"]


class Service(BaseModel):
    """One kind of request a resident can make: a category of petitions."""

    service_code: str
    service_name: str
    description: str
    metadata: bool
    type: ServiceType
    keywords: str
    group: str


class AttributeValue(BaseModel):
    key: str
    name: str


class Attribute(BaseModel):
    variable: bool
    code: str
    datatype: Literal["string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"]
    required: bool
    datatype_description: str
    order: int
    description: str
    values: list[AttributeValue]


class ServiceDefinition(BaseModel):
    service_code: str
    attributes: list[Attribute]


class Created(BaseModel):
    """The answer to a created request: its id at once (our services are realtime), and a
    token that resolves to the same id."""

    service_request_id: str
    token: str
    service_notice: str
    account_id: str | None


class ServiceRequest(BaseModel):
    """A request as GeoReport reads it. Never contact data. Description, address, coordinates
    and media_url only for the client that sent the request (see docs/intake.md)."""

    service_request_id: str
    status: RequestStatus
    status_notes: str
    service_name: str
    service_code: str
    description: str | None
    agency_responsible: str
    service_notice: str
    requested_datetime: datetime
    updated_datetime: datetime
    expected_datetime: datetime | None
    address: str | None
    address_id: str | None
    zipcode: str | None
    lat: float | None
    long: float | None
    media_url: str | None


class TokenAnswer(BaseModel):
    service_request_id: str
    token: str


class Endpoint(BaseModel):
    specification: str
    url: str
    changeset: datetime
    type: Literal["production", "test"]
    formats: list[str]


class Discovery(BaseModel):
    """Open311's service discovery: which APIs this server speaks, where, in which formats."""

    changeset: datetime
    contact: str
    key_service: str
    endpoints: list[Endpoint]


class GeoReportError(BaseModel):
    """One of GeoReport's errors; `code` is the HTTP status."""

    code: int
    description: str


class CreateForm(BaseModel):
    """POST requests' body, form-encoded: the specification's fields and our one attribute.
    A location is required: lat and long, address_string, or address_id."""

    api_key: str = Field(description="Khóa do quản trị viên cấp / the key an administrator issued")
    jurisdiction_id: str | None = None
    service_code: str
    lat: float | None = None
    long: float | None = None
    address_string: str | None = None
    address_id: str | None = None
    email: str | None = None
    device_id: str | None = None
    account_id: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    description: str
    media_url: str | None = None
    unit_id: str = Field(
        alias="attribute[unit_id]",
        description="Khóm/ấp, tổ dân phố nơi người dân sống / the resident's area",
    )
    locale: str | None = None


class ApiKeyIssued(BaseModel):
    """A new key: shown once, never stored (only its hash is)."""

    id: str
    client: str
    key: str
    key_prefix: str
    created_at: datetime


class ApiKeyView(BaseModel):
    id: str
    client: str
    key_prefix: str
    created_by: str
    created_at: datetime
    revoked_at: datetime | None


class IssueKey(BaseModel):
    client: str = Field(min_length=1, max_length=100)
