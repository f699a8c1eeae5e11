"""The units and categories a resident chooses from, read from a YAML file at start."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import yaml

UnitKind = Literal["province", "ward", "commune", "neighbourhood", "hamlet", "group"]
# A resident lives in a neighbourhood, hamlet or residential group, below the ward or commune.
SELECTABLE_KINDS: frozenset[str] = frozenset({"neighbourhood", "hamlet", "group"})


class CatalogError(ValueError):
    """A catalog file intake must refuse to start with."""


@dataclass(frozen=True)
class Unit:
    id: str
    parent_id: str | None
    kind: UnitKind
    name: str


@dataclass(frozen=True)
class Category:
    id: str
    name_vi: str
    name_en: str

    def name(self, lang: str) -> str:
        return self.name_en if lang == "en" else self.name_vi


@dataclass(frozen=True)
class Catalog:
    units: dict[str, Unit]
    categories: dict[str, Category]

    def is_selectable(self, unit_id: str) -> bool:
        unit = self.units.get(unit_id)
        return unit is not None and unit.kind in SELECTABLE_KINDS

    def selectable_units(self) -> list[Unit]:
        """Units a resident may choose, in file order (the tree's reading order)."""
        return [u for u in self.units.values() if u.kind in SELECTABLE_KINDS]

    def path_name(self, unit_id: str) -> str:
        """The unit's name with its ancestors below the province: "Phường Mỹ Thới › Khóm … › Tổ 1"."""
        names: list[str] = []
        unit = self.units.get(unit_id)
        while unit is not None and unit.kind != "province":
            names.append(unit.name)
            unit = self.units.get(unit.parent_id) if unit.parent_id else None
        return " › ".join(reversed(names)) or unit_id


def parse_catalog(data: Any) -> Catalog:
    if not isinstance(data, dict):
        raise CatalogError("catalog: expected a mapping with `units` and `categories`")
    units: dict[str, Unit] = {}
    for raw in data.get("units") or []:
        try:
            unit = Unit(
                id=str(raw["id"]),
                parent_id=str(raw["parent_id"]) if raw.get("parent_id") else None,
                kind=raw["kind"],
                name=str(raw["name"]),
            )
        except (KeyError, TypeError) as exc:
            raise CatalogError(f"catalog: unit {raw!r} lacks {exc}") from None
        if unit.kind not in get_args(UnitKind):
            raise CatalogError(f"catalog: unit {unit.id} has unknown kind {unit.kind!r}")
        if unit.id in units:
            raise CatalogError(f"catalog: unit {unit.id} appears twice")
        units[unit.id] = unit
    for unit in units.values():
        if unit.parent_id is not None and unit.parent_id not in units:
            raise CatalogError(f"catalog: unit {unit.id} has unknown parent {unit.parent_id}")
    categories: dict[str, Category] = {}
    for raw in data.get("categories") or []:
        try:
            cat = Category(
                id=str(raw["id"]), name_vi=str(raw["name_vi"]), name_en=str(raw["name_en"])
            )
        except (KeyError, TypeError) as exc:
            raise CatalogError(f"catalog: category {raw!r} lacks {exc}") from None
        categories[cat.id] = cat
    if not any(u.kind in SELECTABLE_KINDS for u in units.values()) or not categories:
        raise CatalogError("catalog: needs at least one unit below ward level and one category")
    return Catalog(units=units, categories=categories)


def load_catalog(path: Path) -> Catalog:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise CatalogError(f"catalog {path}: {exc}") from exc
    return parse_catalog(data)
