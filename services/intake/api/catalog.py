"""The units and categories a submission names, for a client's form.

No `from __future__ import annotations`: FastAPI reads these annotations at runtime.
"""

from fastapi import APIRouter

from services.intake.api.edge import JsonRoute, operation_id
from services.intake.api.schemas import Category, Unit
from services.intake.deps import CatalogDep

router = APIRouter(
    prefix="/api/v1",
    tags=["catalog"],
    route_class=JsonRoute,
    generate_unique_id_function=operation_id,
)


@router.get("/units")
async def list_units(catalog: CatalogDep) -> list[Unit]:
    """The area tree in reading order; a petition's `unit_id` is one whose `selectable` is true
    (where residents live, below the ward or commune)."""
    return [Unit.of(unit, catalog) for unit in catalog.units.values()]


@router.get("/categories")
async def list_categories(catalog: CatalogDep) -> list[Category]:
    """What a petition may be about; a petition's `category_id` is one of these ids."""
    return [Category.of(category) for category in catalog.categories.values()]
