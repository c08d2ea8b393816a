"""Drives a live Jobs API server with the client generated from openapi/openapi.json.

Run by .ci/clients.sh, with the generated package `jobs_api_client` on the path:

    JOBS_URL=http://127.0.0.1:PORT JOBS_TOKEN=... python main.py
"""

from __future__ import annotations

import os
import re
import sys
from urllib.parse import parse_qs, urlsplit

from jobs_api_client import AuthenticatedClient
from jobs_api_client.api.jobs import create_job, get_job, list_jobs, update_job
from jobs_api_client.models import (
    ApiError,
    ErrorType,
    Job,
    JobCreate,
    JobStatus,
    JobType,
    JobUpdate,
    Metadata,
)
from jobs_api_client.types import UNSET, Response, Unset


def check(ok: bool, what: str) -> None:
    if not ok:
        raise SystemExit(f"check failed: {what}")
    print(f"ok - {what}")


def job(answer: Response[ApiError | Job]) -> Job:
    """The job of a successful answer; otherwise fails with the error's type."""
    if isinstance(answer.parsed, Job):
        return answer.parsed
    kind = answer.parsed.error.type_.value if isinstance(answer.parsed, ApiError) else "no body"
    raise SystemExit(f"HTTP {answer.status_code}: {kind}")


def progress_of(j: Job) -> float | None:
    """`metadata.progress`, read from the open `Metadata` object: a number, or None."""
    progress = j.metadata.additional_properties.get("progress")
    return float(progress) if isinstance(progress, (int, float)) else None


def next_page(link: str | None) -> dict[str, str] | None:
    """The query of the `rel="next"` target of a `Link` header, if there is one."""
    match = re.search(r'<([^>]*)>\s*;\s*rel="next"', link or "")
    if match is None:
        return None
    return {k: v[0] for k, v in parse_qs(urlsplit(match.group(1)).query).items()}


def main() -> None:
    client = AuthenticatedClient(base_url=os.environ["JOBS_URL"], token=os.environ["JOBS_TOKEN"])

    # Create (metadata from a plain dict), then get.
    body = JobCreate(
        job_type=JobType.JOB,
        agent_id="agent-py",
        metadata=Metadata.from_dict({"progress": 0}),
    )
    created = job(create_job.sync_detailed(client=client, body=body))
    check(created.status == JobStatus.CREATED, "a new job is created")
    check(progress_of(created) == 0, "metadata.progress reads as a number")
    fetched = job(get_job.sync_detailed(created.id, client=client))
    check(fetched.id == created.id, "get returns the job")
    same = JobCreate.from_dict({"agent_id": "agent-py", "metadata": {"progress": 0}})
    check(isinstance(same.metadata, Metadata), "a whole body can come from a plain dict")

    # An empty create is a job with every default.
    empty = job(create_job.sync_detailed(client=client))
    check(empty.job_type == JobType.JOB, "an empty create works")

    # List two at a time, following Link rel="next" to the end.
    for _ in range(3):
        job(create_job.sync_detailed(client=client, body=JobCreate(agent_id="agent-py")))
    seen: list[str] = []
    before: str | Unset = UNSET
    for _ in range(10):
        page = list_jobs.sync_detailed(client=client, agent_id="agent-py", limit=2, before=before)
        if not isinstance(page.parsed, list):
            raise SystemExit(f"list: HTTP {page.status_code}")
        seen.extend(j.id for j in page.parsed)
        query = next_page(page.headers.get("link"))
        if query is None:
            break
        before = query["before"]
    check(len(seen) == 4 and len(set(seen)) == 4, "the Link pages list all 4 jobs once")

    # created -> pending -> running -> completed.
    for status in (JobStatus.PENDING, JobStatus.RUNNING):
        moved = job(update_job.sync_detailed(created.id, client=client, body=JobUpdate(status=status)))
        check(moved.status == status, f"the job moved to {status.value}")
    done = job(
        update_job.sync_detailed(
            created.id,
            client=client,
            body=JobUpdate(
                status=JobStatus.COMPLETED,
                metadata=Metadata.from_dict({"progress": 1}),
                total_duration_ns=1_500_000,
            ),
        )
    )
    check(done.status == JobStatus.COMPLETED and done.completed_at is not None, "the job completed")
    check(progress_of(done) == 1, "the final progress is 1")

    # A finished job refuses another transition: 409 with a typed error body.
    refused = update_job.sync_detailed(
        created.id, client=client, body=JobUpdate(status=JobStatus.RUNNING)
    )
    check(refused.status_code == 409, "completed -> running is 409")
    error = refused.parsed
    check(isinstance(error, ApiError), "the error body is parsed as ApiError")
    assert isinstance(error, ApiError)
    check(error.error.type_ == ErrorType.INVALID_JOB_STATUS_TRANSITION, "the error type is typed")
    details = error.error.details
    check(
        details is not None and details.current_status == JobStatus.COMPLETED,
        "details.current_status says why",
    )
    print("python client: all checks passed")


if __name__ == "__main__":
    main()
    sys.exit(0)
