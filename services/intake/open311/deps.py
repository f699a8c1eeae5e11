"""What every Open311 route checks before it answers, as `Annotated` dependencies."""

from typing import Annotated

from fastapi import Depends

from services.intake.deps import AppRuntime, SettingsDep
from services.intake.open311.errors import ApiKeyRefused, UnknownJurisdiction
from services.intake.open311.keys import active_key_id
from services.intake.settings import Settings


def check_jurisdiction(settings: Settings, jurisdiction_id: str | None) -> None:
    """This endpoint serves one jurisdiction, so a client may leave `jurisdiction_id` out;
    one that names it must name ours (`PETITIONS_INTAKE_OPEN311_JURISDICTION_ID`)."""
    if jurisdiction_id and jurisdiction_id != settings.open311_jurisdiction_id:
        raise UnknownJurisdiction(jurisdiction_id)


def _jurisdiction(settings: SettingsDep, jurisdiction_id: str | None = None) -> None:
    check_jurisdiction(settings, jurisdiction_id)


async def key_id_of(runtime: AppRuntime, api_key: str | None) -> str:
    """The id of the client's key, or GeoReport's 403 (no key, unknown, or revoked)."""
    if not api_key:
        raise ApiKeyRefused("api_key: bắt buộc / required")
    key_id = await active_key_id(runtime.engine, api_key)
    if key_id is None:
        raise ApiKeyRefused("api_key: không hợp lệ hoặc đã thu hồi / invalid or revoked")
    return key_id


async def _reader(runtime: AppRuntime, api_key: str | None = None) -> str | None:
    """Reading needs no key; a client that sends one reads its own requests in full, and a
    key that does not work is refused rather than ignored."""
    return await key_id_of(runtime, api_key) if api_key is not None else None


Jurisdiction = Annotated[None, Depends(_jurisdiction)]
ReaderKey = Annotated[str | None, Depends(_reader)]
