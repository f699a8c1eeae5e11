"""How every service process serves HTTP: uvicorn, with the client address taken from
`X-Forwarded-For` only when the peer is one of `PETITIONS_TRUSTED_PROXIES`."""

from __future__ import annotations

from typing import Any

import uvicorn

from shared.settings import CommonSettings


def uvicorn_options(settings: CommonSettings) -> dict[str, Any]:
    """Uvicorn trusts proxy headers from 127.0.0.1 unless told otherwise, so any local client
    could name its own address; here nobody is trusted unless configured."""
    proxies = settings.trusted_proxy_list
    if not proxies:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": proxies}


def serve(app: Any, settings: CommonSettings, *, port: int) -> None:
    uvicorn.run(
        app,
        host=settings.host,
        port=port,
        log_config=None,
        **uvicorn_options(settings),
    )
