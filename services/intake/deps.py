"""What intake's routes are given, as `Annotated` dependencies read from the app's state,
which `create_app` fills: nothing here exists before an app is built."""

from typing import Annotated

from fastapi import Depends, Request

from services.intake.catalog import Catalog
from services.intake.petitions import hash_token
from services.intake.settings import Settings
from services.intake.throttle import PublicThrottle, address_key
from shared.web import AppRuntime, from_state

CatalogDep = Annotated[Catalog, Depends(from_state("catalog"))]
SettingsDep = Annotated[Settings, Depends(from_state("settings"))]
ThrottleDep = Annotated[PublicThrottle, Depends(from_state("throttle"))]


def client_address(request: Request) -> str:
    """The client as the rate limit counts it: the TCP peer, or the address a trusted proxy
    names in `X-Forwarded-For` (uvicorn reads it only from `PETITIONS_TRUSTED_PROXIES`)."""
    return request.client.host if request.client else ""


ClientAddress = Annotated[str, Depends(client_address)]


def resident_action_keys(client: str, token: str) -> list[str]:
    """What a resident's action on their petition counts against: the address, and the link
    (by its token's hash: the person behind a link stands for its contact)."""
    return [address_key(client), f"link:{hash_token(token)}"]


async def count_resident_action(token: str, throttle: ThrottleDep, client: ClientAddress) -> None:
    """A resident's action by tracking token, counted for the public rate limit (429 beyond)."""
    await throttle.admit(resident_action_keys(client, token))


__all__ = ["AppRuntime", "CatalogDep", "ClientAddress", "SettingsDep", "ThrottleDep"]
