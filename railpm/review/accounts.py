"""Accounts and roles of the review app: who may sign in, and what each role may do.

Passwords are hashed with Werkzeug's ``generate_password_hash`` (scrypt, salted; Werkzeug is already in the
tree through Airflow and Flask), never stored or logged in clear. Accounts live in one JSON file (0600) under
the data root, written by ``railpm users add|disable`` and read by the app on every sign-in, so disabling an
account takes effect on its next request. An account is disabled, never deleted: the audit trail keeps
naming it.

Roles and their rights are one table (``RIGHTS``); the app asks ``may(role, right)`` and nothing else.
"""

from __future__ import annotations

import functools
import json
import os
import re
import secrets
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from werkzeug.security import check_password_hash, generate_password_hash

from railpm.errors import BadInputError

ROLES = ("engineer", "planner", "data_team", "admin")
ROLE_NAMES = {"engineer": "reliability engineer", "planner": "maintenance planner", "data_team": "data team",
              "admin": "administrator"}

RIGHTS: dict[str, tuple[str, ...]] = {
    "feedback": ("engineer", "admin"),
    "alert": ("engineer", "planner", "admin"),
    "approve_plan": ("planner", "admin"),
    "promote_model": ("data_team", "admin"),
}
"""Right -> roles that hold it. Confirming, dismissing and recording findings is the engineers'; moving an
alert through its life (acknowledge, plan, close) is shared with planners; approving a plan is the
planners'; promoting a model the data team's."""
RIGHT_NAMES = {"feedback": "record decisions and findings", "alert": "move an alert through its life",
               "approve_plan": "approve an inspection plan", "promote_model": "promote a model"}

USERNAME = re.compile(r"^[a-z][a-z0-9._-]{1,39}$")
MIN_PASSWORD_CHARS = 10


@dataclass(frozen=True)
class Account:
    username: str
    name: str
    role: str
    password_hash: str
    disabled: bool = False
    created_at: str = ""

    @property
    def signature(self) -> str:
        """How the account signs the audit trail: the user name (stable, unique), the role in words beside it."""
        return self.username


def may(role: str | None, right: str) -> bool:
    return role in RIGHTS[right]


def accounts_file(settings) -> Path:
    return settings.review.accounts_file or settings.data_root / "review" / "accounts.json"


def read_accounts(path: Path) -> dict[str, Account]:
    if not path.exists():
        return {}
    try:
        raw = json.loads(path.read_text())
        return {name: Account(**fields) for name, fields in raw.items()}
    except (ValueError, TypeError) as exc:
        raise BadInputError(f"{path}: not an accounts file written by `railpm users` ({exc})", rule="accounts_file") from exc


def _write_accounts(path: Path, accounts: dict[str, Account]) -> None:
    """Atomically, owner-only: the file holds password hashes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as sink:
        json.dump({name: asdict(a) for name, a in sorted(accounts.items())}, sink, indent=1)
    os.chmod(partial, 0o600)
    os.replace(partial, path)


def add_account(path: Path, username: str, *, name: str, role: str, password: str) -> Account:
    """Create an account, or give an existing one a new password, name and role (and enable it again)."""
    if not USERNAME.fullmatch(username):
        raise BadInputError(f"user name {username!r}: 2-40 characters, lower-case letters, digits, '.', '_' or '-', "
                            "starting with a letter", rule="account_username")
    if role not in ROLES:
        raise BadInputError(f"role {role!r}: must be one of {', '.join(ROLES)}", rule="account_role")
    if len(password) < MIN_PASSWORD_CHARS:
        raise BadInputError(f"the password of {username} must have at least {MIN_PASSWORD_CHARS} characters",
                            rule="account_password")
    accounts = read_accounts(path)
    account = Account(username=username, name=(name or username).strip()[:80], role=role,
                      password_hash=generate_password_hash(password),
                      created_at=accounts[username].created_at if username in accounts
                      else datetime.now(timezone.utc).isoformat(timespec="seconds"))
    accounts[username] = account
    _write_accounts(path, accounts)
    return account


def disable_account(path: Path, username: str) -> Account:
    accounts = read_accounts(path)
    if username not in accounts:
        raise BadInputError(f"no account {username!r} in {path}", rule="account_username")
    accounts[username] = Account(**(asdict(accounts[username]) | {"disabled": True}))
    _write_accounts(path, accounts)
    return accounts[username]


def authenticate(path: Path, username: str, password: str) -> Account | None:
    """The enabled account with this name and password, else None (the same answer whatever was wrong)."""
    account = read_accounts(path).get(username)
    if account is None:
        check_password_hash(_dummy_hash(), password)  # same work for an unknown name: no timing hint
        return None
    if not check_password_hash(account.password_hash, password) or account.disabled:
        return None
    return account


def current_account(path: Path, username: str | None) -> Account | None:
    """The session's account if it still exists and is enabled (a disabled account is signed out at once)."""
    if not username:
        return None
    account = read_accounts(path).get(username)
    return account if account is not None and not account.disabled else None


def session_secret(settings) -> str:
    """The session cookie's signing key: ``RAILPM_REVIEW__SESSION_SECRET``, else generated once (0600)."""
    given = settings.review.session_secret
    if given is not None:
        return given.get_secret_value()
    path = accounts_file(settings).with_name("session_secret")
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as sink:
        sink.write(value)
    return value


@functools.cache
def _dummy_hash() -> str:
    return generate_password_hash(secrets.token_urlsafe(16))
