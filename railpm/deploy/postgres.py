"""PostgreSQL for the topology: Debian's server, one cluster (initialised once) holding Airflow's metadata DB
and MLflow's store, password-authenticated over TCP only."""

from __future__ import annotations

import glob
import os
import subprocess
from pathlib import Path

from railpm.errors import RailpmError

DATABASES = ("airflow", "mlflow")


def postgres_bin_dir() -> Path:
    """The newest PostgreSQL server installed from Debian's packages (``/usr/lib/postgresql/<major>/bin``)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(Path(p).parts[-3]))
    if not found:
        raise RailpmError("PostgreSQL server not found under /usr/lib/postgresql: install Debian's postgresql "
                          "package (scripts/install-system-deps.sh does)")
    return Path(found[-1]).parent


def postgres_user() -> str | None:
    """PostgreSQL refuses to run as root: as root it runs as the ``postgres`` user."""
    return "postgres" if os.geteuid() == 0 else None


def postgres_ready(host: str, port: int) -> bool:
    result = subprocess.run([str(postgres_bin_dir() / "pg_isready"), "-h", host, "-p", str(port)], capture_output=True)
    return result.returncode == 0


def init_cluster(data: Path, password: str) -> None:
    """``initdb`` once (a cluster that exists is left as it is), owner ``railpm`` with ``password``."""
    if (data / "PG_VERSION").exists():
        return
    as_root = os.geteuid() == 0
    data.mkdir(parents=True, exist_ok=True)
    password_file = data.parent / "postgres.pw"
    password_file.write_text(password)
    os.chmod(password_file, 0o600)
    try:
        if as_root:
            reachable_by_postgres(data)
            for path in (data, password_file):
                os.chown(path, *uid_gid("postgres"))
        done = subprocess.run(
            [str(postgres_bin_dir() / "initdb"), "-D", str(data), "-U", "railpm", f"--pwfile={password_file}",
             "--auth-host=scram-sha-256", "--auth-local=reject", "-E", "UTF8", "--no-instructions"],
            capture_output=True, text=True, user="postgres" if as_root else None,
        )
    finally:
        password_file.unlink(missing_ok=True)
    if done.returncode != 0:
        raise RailpmError(f"initdb failed for {data}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


def reachable_by_postgres(data: Path) -> None:
    """As root, PostgreSQL runs as the ``postgres`` user, who must be able to walk down to its data folder."""
    blocked = [p for p in reversed(data.parents) if p.stat().st_mode & 0o001 == 0 and p.stat().st_uid != uid_gid("postgres")[0]]
    if blocked:
        raise RailpmError(f"the postgres user cannot reach {data}: {blocked[0]} is not searchable by others "
                          "(chmod o+x it, or set RAILPM_TOPOLOGY__STATE_DIR to a folder it can reach)")


def create_databases(host: str, port: int, password: str, databases: tuple[str, ...] = DATABASES) -> None:
    """The databases the services use, created once in the running cluster."""
    import psycopg2

    connection = psycopg2.connect(host=host, port=port, user="railpm", dbname="postgres", password=password)
    connection.autocommit = True  # CREATE DATABASE cannot run inside a transaction
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT datname FROM pg_database")
            existing = {row[0] for row in cursor.fetchall()}
            for database in databases:
                if database not in existing:
                    cursor.execute(f"CREATE DATABASE {database}")
    finally:
        connection.close()


def uid_gid(user: str) -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid
