"""The topology's passwords and signing key: from the environment (``RAILPM_TOPOLOGY__*``), else generated once
and kept beside the state in a file only its owner can read; none is ever in the repository."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from railpm.config import TopologySettings

SECRET_NAMES = ("db_password", "airflow_password", "jwt_secret")


def topology_secrets(path: Path, given: TopologySettings) -> dict[str, str]:
    """Each secret as given, else as kept in ``path``, else new; ``path`` (0600) is rewritten when one changed."""
    kept = json.loads(path.read_text()) if path.exists() else {}
    values = {}
    for name in SECRET_NAMES:
        value = getattr(given, name)
        values[name] = (value.get_secret_value() if value else None) or kept.get(name) or secrets.token_urlsafe(24)
    if values != kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        os.chmod(path, 0o600)
        path.write_text(json.dumps(values))
    return values
