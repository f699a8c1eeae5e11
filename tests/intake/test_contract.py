"""Intake keeps the contract its own `/openapi.json` states, checked by schemathesis against the
service running as in production: `python -m services.intake` (uvicorn) on a free port of
127.0.0.1, the session's nats-server, a SQLite file.

Every operation gets generated requests, valid and invalid; then stateful scenarios follow the
document's links (a receipt leads to the status by reference and to every action by tracking
token). Any answer that is a 5xx, has an undocumented status, content type or header, or a body
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
import hypothesis
import hypothesis.errors
import pytest
import schemathesis
from hypothesis import HealthCheck

from services.stack import Stack, file_sink
from shared.auth import Staff, issue_token
from shared.embedded_nats import EmbeddedNats, free_port

SECRET = secrets.token_urlsafe(32)
# A few hundred requests in all: enough to find a missing schema or a 500 within a minute.
EXAMPLES_PER_OPERATION = 20
STATEFUL_SCENARIOS = 20
SETTINGS = hypothesis.settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


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
        env={"PETITIONS_SECRET_KEY": SECRET, "PETITIONS_LOG_FORMAT": "json"},
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
    admin = Staff(username="contract", member_id=None, role="admin", unit_id=None)
    config = schemathesis.Config.from_dict(
        {
            "base-url": intake_url,
            "headers": {"Authorization": f"Bearer {issue_token(admin, secret=SECRET)}"},
            "checks": {"positive_data_acceptance": {"enabled": False}},
        }
    )
    document = httpx.get(f"{intake_url}/openapi.json").json()
    schema = schemathesis.openapi.from_dict(with_catalog(document, intake_url), config=config)

    @schema.hook
    def after_call(
        context: schemathesis.HookContext, case: schemathesis.Case, response: schemathesis.Response
    ) -> None:
        answered[(case.operation.label, response.status_code)] += 1

    # GeoReport v2 answers in the form its own specification sets (errors as a list, XML);
    # tests/intake/test_open311.py holds it to that.
    return schema.exclude(path_regex="^/open311/")


def test_every_operation_answers_as_documented(
    intake_schema: schemathesis.BaseSchema, answered: Counter[tuple[str, int]]
) -> None:
    failures: list[str] = []
    for result in intake_schema.get_all_operations():
        operation = result.ok()
        for mode in schemathesis.GenerationMode:  # valid requests, then invalid ones

            @SETTINGS
            @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
            def answers_as_documented(case: schemathesis.Case) -> None:
                case.call_and_validate()

            try:
                answers_as_documented()
            except hypothesis.errors.Unsatisfiable:
                # Nothing in the operation can be invalid (no parameters, or strings of any
                # shape): there is no invalid request to send.
                assert mode is schemathesis.GenerationMode.NEGATIVE, operation.label
            except (Exception, BaseExceptionGroup) as exc:
                failures.append(f"{operation.label} ({mode}):\n{exc}")
    assert not failures, "\n\n".join(failures)
    statuses = {status for (label, status) in answered if label == "POST /api/v1/petitions"}
    assert {201, 422} <= statuses, answered


def test_scenarios_along_the_links_answer_as_documented(
    intake_schema: schemathesis.BaseSchema, answered: Counter[tuple[str, int]]
) -> None:
    answered.clear()
    machine = intake_schema.as_state_machine()
    machine.run(
        settings=hypothesis.settings(
            SETTINGS, max_examples=STATEFUL_SCENARIOS, stateful_step_count=6
        )
    )
    reached = {label for (label, status) in answered if "/track/" in label and status == 200}
    assert len(reached) >= 3, answered
