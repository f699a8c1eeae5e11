"""What intake's routes are given, as `Annotated` dependencies read from the app's state,
which `create_app` fills: nothing here exists before an app is built."""

from typing import Annotated

from fastapi import Depends, Request

from services.intake.catalog import Catalog
from services.intake.settings import Settings
from shared.web import AppRuntime


def _catalog(request: Request) -> Catalog:
    catalog: Catalog = request.app.state.catalog
    return catalog


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


CatalogDep = Annotated[Catalog, Depends(_catalog)]
SettingsDep = Annotated[Settings, Depends(_settings)]

__all__ = ["AppRuntime", "CatalogDep", "SettingsDep"]
