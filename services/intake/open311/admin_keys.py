"""The administrator's API for Open311 keys: issue one per client (shown once), list, revoke.
Answers problem details like the rest of intake's JSON API."""

from fastapi import APIRouter, Response

from services.intake.deps import AppRuntime
from services.intake.open311.keys import issue_key, list_keys, revoke_key
from services.intake.open311.schemas import ApiKeyIssued, ApiKeyView, IssueKey
from shared.web import AdminStaff, ProblemError, problem_responses

router = APIRouter(prefix="/api/v1/admin/open311/keys", tags=["admin"])


@router.post("", status_code=201, responses=problem_responses(400, 401, 403, 422))
async def issue(body: IssueKey, staff: AdminStaff, runtime: AppRuntime) -> ApiKeyIssued:
    """A new key for one client; the key is in this answer only (intake keeps its hash)."""
    return await issue_key(
        runtime.engine, client=body.client, created_by=staff.username, now=runtime.clock.now()
    )


@router.get("", responses=problem_responses(401, 403))
async def listed(_: AdminStaff, runtime: AppRuntime) -> list[ApiKeyView]:
    """Every key issued, revoked ones too, by their prefix (never the key)."""
    return await list_keys(runtime.engine)


@router.delete("/{key_id}", status_code=204, responses=problem_responses(401, 403, 404))
async def revoke(key_id: str, _: AdminStaff, runtime: AppRuntime) -> Response:
    """Refuse the key from now on (repeating is harmless); what it sent stays."""
    if await revoke_key(runtime.engine, key_id, now=runtime.clock.now()) is None:
        raise ProblemError(404, "Không có khóa này / No such key")
    return Response(status_code=204)
