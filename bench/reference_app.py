"""The limit intake is held against: accept a petition, insert one row with asyncpg, publish it
to JetStream and wait for the ack. No validation, no outbox, no ORM: the floor of the work.

Run by `bench/run.py` as `uvicorn --app-dir bench reference_app:app` with
BENCH_REF_DATABASE_URL (postgresql://…) and BENCH_REF_NATS_URL set.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import nats
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from nats.js.errors import BadRequestError

STREAM = "BENCHREF"
SUBJECT = "benchref.submitted"


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    pool = await asyncpg.create_pool(os.environ["BENCH_REF_DATABASE_URL"], min_size=5, max_size=20)
    await pool.execute(
        "CREATE TABLE IF NOT EXISTS ref_petitions ("
        " id uuid PRIMARY KEY, body jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
    )
    nc = await nats.connect(os.environ["BENCH_REF_NATS_URL"])
    js = nc.jetstream()
    with contextlib.suppress(BadRequestError):  # already there from an earlier start
        await js.add_stream(name=STREAM, subjects=[f"{STREAM.lower()}.>"])
    app.state.pool, app.state.js = pool, js
    yield
    await nc.drain()
    await pool.close()


app = FastAPI(lifespan=lifespan)


@app.get("/readyz")
async def readyz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/api/v1/petitions", status_code=201)
async def submit(request: Request) -> JSONResponse:
    body: dict[str, Any] = await request.json()
    petition_id = uuid.uuid4()
    payload = json.dumps({"petition_id": str(petition_id), **body})
    await request.app.state.pool.execute(
        "INSERT INTO ref_petitions (id, body) VALUES ($1, $2::jsonb)", petition_id, payload
    )
    await request.app.state.js.publish(
        SUBJECT, payload.encode(), headers={"Nats-Msg-Id": str(petition_id)}
    )
    return JSONResponse({"petition_id": str(petition_id)}, status_code=201)
