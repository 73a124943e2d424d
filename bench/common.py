"""What the benchmark scripts share: the project's interpreter, production's keys, fresh
databases, management commands and free ports."""

import base64
import os
import secrets
import socket
import subprocess
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"


def production_keys() -> dict[str, str]:
    """A secret key and an audit signing key of the run's own: with DEBUG off, as the
    benchmarks run, the service starts only with both."""
    return {
        "SECRET_KEY": secrets.token_urlsafe(50),
        "AUDIT_SIGNING_KEY": base64.b64encode(os.urandom(32)).decode(),
    }


def database_url(server: str, name: str) -> str:
    return f"{server.rstrip('/')}/{name}"


def recreate_database(server: str, name: str) -> None:
    with psycopg.connect(database_url(server, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def manage(env: dict[str, str], *args: str, root: Path = ROOT) -> subprocess.CompletedProcess:
    """`manage.py` of the checkout at `root` (this one by default), run by this
    project's interpreter."""
    return subprocess.run(
        [str(PYTHON), "manage.py", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def manage_ok(env: dict[str, str], *args: str, root: Path = ROOT) -> str:
    result = manage(env, *args, root=root)
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
