"""A small HTTP client for the running stack, as a resident and as staff would use it."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import httpx

from faults.load import PETITION
from services.stack import Stack
from tests.support import eventually

# The same demo petition the fault suite submits, from one definition.
DEMO_PETITION = PETITION


class StackClient:
    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.http = httpx.AsyncClient(timeout=15.0)
        self._tokens: dict[str, str] = {}

    async def aclose(self) -> None:
        await self.http.aclose()

    def url(self, service: str, path: str) -> str:
        return self.stack.url(service) + path

    async def submit(self, **overrides: Any) -> dict[str, Any]:
        response = await self.http.post(
            self.url("intake", "/api/v1/petitions"), json={**DEMO_PETITION, **overrides}
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def token(self, username: str, password: str = "demo") -> str:
        if username not in self._tokens:
            response = await self.http.post(
                self.url("routing", "/api/v1/auth/token"),
                data={"username": username, "password": password},
            )
            assert response.status_code == 200, response.text
            self._tokens[username] = response.json()["access_token"]
        return self._tokens[username]

    async def as_staff(
        self, username: str, method: str, service: str, path: str, **kwargs: Any
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {await self.token(username)}"}
        return await self.http.request(method, self.url(service, path), headers=headers, **kwargs)

    async def cases_of(self, petition_id: str) -> list[dict[str, Any]]:
        response = await self.as_staff(
            "admin",
            "GET",
            "routing",
            "/api/v1/cases",
            params={"scope": "unit", "petition_id": petition_id},
        )
        assert response.status_code == 200, response.text
        return list(response.json())

    async def wait_case(
        self, petition_id: str, *, timeout: float = 30.0, **expected: Any
    ) -> dict[str, Any]:
        async def check() -> dict[str, Any] | None:
            cases = await self.cases_of(petition_id)
            if len(cases) == 1 and all(cases[0].get(k) == v for k, v in expected.items()):
                return cases[0]
            return None

        return await eventually(
            check, timeout=timeout, what=f"case of {petition_id} with {expected}"
        )

    async def tracking(self, token: str) -> dict[str, Any]:
        response = await self.http.get(self.url("intake", f"/api/v1/track/{token}"))
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def wait_status(self, token: str, status: str, timeout: float = 30.0) -> dict[str, Any]:
        async def check() -> dict[str, Any] | None:
            view = await self.tracking(token)
            return view if view["status"] == status else None

        return await eventually(check, timeout=timeout, what=f"tracking status {status}")


def mails(var_dir: Path) -> list[str]:
    """Each message in the embedded mailbox as its headers and decoded text parts."""
    folder = var_dir / "mail"
    if not folder.exists():
        return []
    out = []
    for path in sorted(folder.glob("*.eml")):
        message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        parts = [f"{k}: {v}" for k, v in message.items()]
        for part in message.walk():
            if part.get_content_type() in ("text/plain", "text/html"):
                parts.append(str(part.get_content()))
        out.append("\n".join(parts))
    return out


async def wait_mail(var_dir: Path, *needles: str, timeout: float = 30.0) -> str:
    async def check() -> str | None:
        for text in mails(var_dir):
            if all(n in text for n in needles):
                return text
        return None

    return await eventually(check, timeout=timeout, what=f"an email containing {needles}")
