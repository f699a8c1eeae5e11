"""Open311 GeoReport v2: intake's categories as services, petitions created by GeoReport
clients with an administrator-issued `api_key`, and requests read back, in JSON or XML.

`install(app)` registers the routers and the GeoReport error handling; `create_app` calls it
after the shared edge. See docs/intake.md for the mapping and the rules.
"""

from fastapi import FastAPI

from services.intake.open311 import (
    admin_keys,
    discovery,
    edge,
    service_list,
    service_requests,
    tokens,
)


def install(app: FastAPI) -> None:
    for module in (discovery, service_list, service_requests, tokens, admin_keys):
        app.include_router(module.router)
    edge.install(app)
