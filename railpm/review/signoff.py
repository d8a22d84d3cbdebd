"""Signed decisions outside the feedback trail: approving an inspection plan, promoting a model.

A plan approval is one read-only JSON file beside the plan it approves (``plans/<day>/approvals/``), created
exclusively like a feedback entry, so approvals accumulate and are never rewritten. A promotion moves MLflow's
``champion`` alias and tags the version with who promoted it and when, so the registry itself carries the
signature.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import datetime, timezone
from pathlib import Path

from railpm.errors import BadInputError


def approve_plan(plan_folder: Path, *, approved_by: str, role: str, note: str | None = None,
                 approved_at: datetime | None = None) -> Path:
    approved_at = (approved_at or datetime.now(timezone.utc)).astimezone(timezone.utc)
    folder = plan_folder / "approvals"
    folder.mkdir(parents=True, exist_ok=True)
    entry = {"plan": plan_folder.name, "approved_by": approved_by, "role": role,
             "approved_at": approved_at.isoformat(timespec="seconds"), "note": note or None}
    path = folder / f"approval-{approved_at:%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:8]}.json"
    with open(path, "x") as sink:
        json.dump(entry, sink)
    os.chmod(path, 0o444)
    return path


def plan_approvals(plan_folder: Path) -> list[dict]:
    """The plan's approvals, oldest first."""
    folder = plan_folder / "approvals"
    return [json.loads(p.read_text()) for p in sorted(folder.glob("approval-*.json"))] if folder.is_dir() else []


def promote_model(tracking_uri: str, model_name: str, version: str, *, promoted_by: str) -> None:
    """Give ``version`` the champion alias, signed on the version's tags."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from railpm.models.tracking import CHAMPION, set_alias

    client = MlflowClient(tracking_uri=tracking_uri)
    try:
        client.get_model_version(model_name, version)
    except MlflowException as exc:
        raise BadInputError(f"model {model_name} has no version {version!r}", rule="model_version") from exc
    set_alias(client, model_name, CHAMPION, version)
    client.set_model_version_tag(model_name, version, "railpm.promoted_by", promoted_by)
    client.set_model_version_tag(model_name, version, "railpm.promoted_at",
                                 datetime.now(timezone.utc).isoformat(timespec="seconds"))
