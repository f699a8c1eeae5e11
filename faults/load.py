"""A steady load while a scenario breaks things: residents submit a few petitions a second to
intake over HTTP, and staff accept and resolve their cases through routing's API, as people
would. A refused submission is tried again with the same `Idempotency-Key` until it is stored
(a resident pressing "send" again), so every petition the load counts got its 201."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from services.stack import Stack

PETITION = {
    "unit_id": "my-hoa-hung-my-khanh-2",
    "category_id": "roads_lighting",
    "title": "Đèn đường hẻm 3 không sáng",
    "description": "Từ tuần trước đèn đầu hẻm 3 tắt, buổi tối rất tối và nguy hiểm.",
    "location": "Hẻm 3, ấp Mỹ Khánh 2",
    "name": "Trần Thị Mai",
    "email": "mai@example.org",
    "phone": "0912 345 678",
    "notify": True,
    "consent": True,
}
PASSWORD = "demo"  # the demo organisation's staff


@dataclass
class Submitted:
    petition_id: str
    reference: str
    tracking_token: str
    at: float


@dataclass
class LoadStats:
    submitted: list[Submitted] = field(default_factory=list)
    # submissions that never got their 201 before the load gave up (the resident gave up too)
    abandoned: int = 0
    refusals: Counter[str] = field(default_factory=Counter)
    accepted: int = 0
    resolved: int = 0
    staff_errors: Counter[str] = field(default_factory=Counter)


class Staff:
    """Signed-in staff over HTTP; a token refused (expired, the clock jumped) is asked for again."""

    def __init__(self, stack: Stack, http: httpx.AsyncClient) -> None:
        self.stack = stack
        self.http = http
        self.tokens: dict[str, str] = {}

    async def token(self, username: str) -> str:
        if username not in self.tokens:
            response = await self.http.post(
                self.stack.url("routing") + "/api/v1/auth/token",
                data={"username": username, "password": PASSWORD},
            )
            response.raise_for_status()
            self.tokens[username] = response.json()["access_token"]
        return self.tokens[username]

    async def request(
        self, username: str, method: str, service: str, path: str, **kwargs: Any
    ) -> httpx.Response:
        for _ in range(2):
            headers = {"Authorization": f"Bearer {await self.token(username)}"}
            response = await self.http.request(
                method, self.stack.url(service) + path, headers=headers, **kwargs
            )
            if response.status_code != 401:
                return response
            self.tokens.pop(username, None)
        return response


class Load:
    """`rate` petitions a second and a staff round a second, until `stop()`."""

    def __init__(
        self, stack: Stack, *, rate: float = 2.0, resolve: bool = True, timeout: float = 10.0
    ) -> None:
        self.stack = stack
        self.rate = rate
        self.resolve = resolve
        self.stats = LoadStats()
        self.http = httpx.AsyncClient(timeout=timeout)
        self.staff = Staff(stack, self.http)
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._submissions: set[asyncio.Task[None]] = set()
        self.give_up_at: float | None = None

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._residents(), name="load-residents"),
            asyncio.create_task(self._staff_rounds(), name="load-staff"),
        ]

    async def stop(self, *, patience: float = 120.0) -> LoadStats:
        """Stop submitting; wait up to `patience` s for submissions still being retried."""
        self._stopping.set()
        self.give_up_at = time.monotonic() + patience
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._submissions:
            await asyncio.gather(*self._submissions, return_exceptions=True)
        await self.http.aclose()
        return self.stats

    async def _residents(self) -> None:
        period = 1.0 / self.rate
        next_at = time.monotonic()
        while not self._stopping.is_set():
            task = asyncio.create_task(self._submit())
            self._submissions.add(task)
            task.add_done_callback(self._submissions.discard)
            next_at += period
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._stopping.wait(), timeout=max(0.0, next_at - time.monotonic())
                )

    async def _submit(self) -> None:
        key = str(uuid.uuid4())
        pause = 1.0
        while self.give_up_at is None or time.monotonic() < self.give_up_at:
            try:
                response = await self.http.post(
                    self.stack.url("intake") + "/api/v1/petitions",
                    json=PETITION,
                    headers={"Idempotency-Key": key},
                )
            except httpx.HTTPError as exc:
                self.stats.refusals[type(exc).__name__] += 1
            else:
                if response.status_code == 201:
                    body = response.json()
                    self.stats.submitted.append(
                        Submitted(
                            str(body["petition_id"]),
                            str(body["reference"]),
                            str(body.get("tracking_token", "")),
                            time.monotonic(),
                        )
                    )
                    return
                self.stats.refusals[str(response.status_code)] += 1
            # A resident tries again a little later each time (at most every 15 s).
            await asyncio.sleep(pause)
            pause = min(pause * 2, 15.0)
        self.stats.abandoned += 1

    async def _staff_rounds(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.staff_round()
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                self.stats.staff_errors[type(exc).__name__] += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=1.0)

    async def staff_round(self) -> None:
        """Each holder accepts their assigned cases; an administrator resolves accepted ones."""
        for status, action in (("assigned", "accept"), ("accepted", "resolve")):
            if action == "resolve" and not self.resolve:
                continue
            listing = await self.staff.request(
                "admin",
                "GET",
                "routing",
                "/api/v1/cases",
                params={"scope": "unit", "status": status, "limit": 50},
            )
            if listing.status_code != 200:
                self.stats.staff_errors[f"list {listing.status_code}"] += 1
                continue
            for case in listing.json():
                await self._act(action, case)

    async def _act(self, action: str, case: dict[str, Any]) -> None:
        path = f"/api/v1/cases/{case['id']}/{action}"
        if action == "accept":
            if not case.get("holder_username"):
                return
            response = await self.staff.request(case["holder_username"], "POST", "routing", path)
        else:
            response = await self.staff.request(
                "admin", "POST", "routing", path, json={"explanation": "Đã sửa đèn / Lamp fixed"}
            )
        if response.status_code == 200:
            if action == "accept":
                self.stats.accepted += 1
            else:
                self.stats.resolved += 1
        else:
            self.stats.staff_errors[f"{action} {response.status_code}"] += 1
