"""What run.py's call process imports on SQLite (issue 15 item 11: its resident memory)."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

PROBE = """
import sys
import run
from core.config import load_config
run.peewee_without_psycopg2(load_config({"database_url": sys.argv[1], "mode": "test", "secret_key": "p" * 40}))
import hotline.product  # noqa: F401  what run.py imports next
loaded = "psycopg2" in sys.modules
import psycopg2  # noqa: F401  still there for whoever asks for it (Kamailio's tables)
print(loaded, "psycopg2" in sys.modules)
"""


def probe(url: str) -> str:
    done = subprocess.run([sys.executable, "-c", PROBE, url], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_sqlite_call_process_does_not_load_psycopg2(tmp_path):
    """Should import peewee and the product without psycopg2 on SQLite, and still let psycopg2 be imported
    afterwards."""
    assert probe(f"sqlite:///{tmp_path / 'x.sqlite3'}") == "False True"


def test_postgres_call_process_keeps_psycopg2():
    """Should leave peewee's PostgreSQL support as it is when the database is PostgreSQL."""
    assert probe("postgresql://postgres@127.0.0.1:5432/test") == "True True"
