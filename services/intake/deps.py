"""What intake's routes are given, as `Annotated` dependencies read from the app's state,
which `create_app` fills: nothing here exists before an app is built."""

from typing import Annotated

from fastapi import Depends

from services.intake.catalog import Catalog
from services.intake.settings import Settings
from shared.web import AppRuntime, from_state

CatalogDep = Annotated[Catalog, Depends(from_state("catalog"))]
SettingsDep = Annotated[Settings, Depends(from_state("settings"))]

__all__ = ["AppRuntime", "CatalogDep", "SettingsDep"]
