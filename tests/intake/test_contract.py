"""Intake keeps the contract its own `/openapi.json` states, checked by schemathesis against the
service running as in production: `python -m services.intake` (uvicorn) on a free port of
127.0.0.1, the session's nats-server, a SQLite file.

One schemathesis run, as `st run` does it: the document's examples, the coverage phase
(boundary values, missing parts, methods not allowed), fuzzing with valid and invalid requests
for every operation, then stateful scenarios along the document's links (a receipt leads to the
status by reference and to every action by tracking token). Any answer that is a 5xx, has an undocumented status, content type or header, or a body
that does not match its documented schema fails the test.

One check is left out: `positive_data_acceptance` expects every schema-valid body to be
accepted, but a schema cannot say that a title is blank once cleaned or that a phone number
has too few digits; those are the domain's rules, answered 422 with bilingual field errors
(documented). The document leaves `unit_id` and `category_id` open (a deployment has its own
catalog); the fuzzer is told this deployment's ids, so that valid petitions get stored and the
scenarios reach the tracking operations.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis import engine
from schemathesis.engine import events

from services.stack import UNTHROTTLED_ENV, Stack, file_sink
from shared.auth import Staff, issue_token
from shared.embedded_nats import EmbeddedNats, free_port
from tests.support import service_nats_env

SECRET = secrets.token_urlsafe(32)
# A few hundred requests in all (about 650): enough to find a missing schema or a 500 within a
# minute. A fixed seed: a failure here is reproduced by running the test again.
RUN = {
    "seed": 20261201,
    # No cache of what earlier runs learned (it would live in ./.schemathesis): each run alike.
    "cache": {"enabled": False},
    "generation": {"mode": "all", "max-examples": 20, "database": "none"},
    "checks": {"positive_data_acceptance": {"enabled": False}},
    # Error feedback guesses constraints from the 422 messages ("email: not a valid email
    # address" becomes `format: email`) and then holds the service to its guess ("" is no
    # email, and accepted); the contract under test is the document.
    "phases": {"fuzzing": {"error-feedback": {"enabled": False}}},
}


@pytest.fixture(scope="module")
def intake_url(
    nats_server: EmbeddedNats, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    var: Path = tmp_path_factory.mktemp("contract")
    stack = Stack(
        var_dir=var,
        services=("intake",),
        ports={"intake": free_port()},
        nats_url=nats_server.url,
        env={
            "PETITIONS_SECRET_KEY": SECRET,
            "PETITIONS_LOG_FORMAT": "json",
            **UNTHROTTLED_ENV,
            **service_nats_env(nats_server.url, "intake"),
        },
        output=file_sink(var / "stack.log"),
    )
    stack.start()
    try:
        stack.wait_ready(timeout=60)
        yield stack.url("intake")
    finally:
        stack.stop()


def with_catalog(document: dict[str, Any], url: str) -> dict[str, Any]:
    """The document with this deployment's unit and category ids as enums of a submission."""
    units = httpx.get(f"{url}/api/v1/units").json()
    categories = httpx.get(f"{url}/api/v1/categories").json()
    fields = document["components"]["schemas"]["PetitionSubmission"]["properties"]
    fields["unit_id"]["enum"] = [u["id"] for u in units if u["selectable"]]
    fields["category_id"]["enum"] = [c["id"] for c in categories]
    return document


@pytest.fixture(scope="module")
def answered() -> Counter[tuple[str, int]]:
    """(operation, status) of every answer the fuzzer received."""
    return Counter()


@pytest.fixture(scope="module")
def intake_schema(intake_url: str, answered: Counter[tuple[str, int]]) -> schemathesis.BaseSchema:
    admin = Staff(
        username="contract", member_id=None, role="admin", unit_id=None, session_id="s-contract"
    )
    config = schemathesis.Config.from_dict(
        {
            "base-url": intake_url,
            "headers": {"Authorization": f"Bearer {issue_token(admin, secret=SECRET)}"},
            **RUN,
        }
    )
    document = httpx.get(f"{intake_url}/openapi.json").json()
    schema = schemathesis.openapi.from_dict(with_catalog(document, intake_url), config=config)

    @schema.hook
    def after_call(
        context: schemathesis.HookContext, case: schemathesis.Case, response: schemathesis.Response
    ) -> None:
        answered[(case.operation.label, response.status_code)] += 1

    # GeoReport v2 is fuzzed too, against the errors and XML its document declares;
    # tests/intake/test_open311.py holds it to the specification's own examples.
    return schema


def failures_of(run: Iterator[events.EngineEvent]) -> list[str]:
    """Every failed check and every error of a schemathesis run, with a curl to reproduce it."""
    found: list[str] = []
    for event in run:
        if isinstance(event, events.ScenarioFinished):
            for checks in event.recorder.checks.values():
                found += [
                    f"{event.phase} {event.label}: {check.name}\n"
                    f"{check.failure_info.failure}\n{check.failure_info.code_sample}"
                    for check in checks
                    if check.failure_info is not None
                ]
        elif isinstance(event, events.NonFatalError | events.FatalError):
            found.append(f"error: {event!r}")
        elif isinstance(event, events.EngineFinished):
            found += [f"after the run: {failure}" for failure in event.failures]
    return found


def test_every_answer_is_as_documented(
    intake_schema: schemathesis.BaseSchema, answered: Counter[tuple[str, int]]
) -> None:
    failures = failures_of(engine.from_schema(intake_schema).execute())

    assert not failures, "\n\n".join(dict.fromkeys(failures))
    # The run reached what it is meant to: stored petitions, and actions on them by token.
    submitted = {status for (label, status) in answered if label == "POST /api/v1/petitions"}
    assert {201, 422} <= submitted, answered
    # Reaching an action means its token named a stored petition: done (200), or refused in
    # that petition's state (409, 429); a 404 or 422 never got that far.
    reached = {200, 409, 429}
    tracked = {label for (label, status) in answered if "/track/" in label and status in reached}
    assert len(tracked) >= 3, answered
