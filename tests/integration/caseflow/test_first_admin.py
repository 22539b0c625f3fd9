"""A production installation starts without demo accounts; its first administrator comes from the
create-admin command (password from the environment or the terminal, never the command line)."""
from __future__ import annotations

import pytest

from caseflow import accounts
from core.config import load_config
from hotline.accounts import main as create_admin_command
from core.db import bind_database, database
from webui.app import load_demo_if_empty


def _config(tmp_path, mode):
    return load_config({"database_url": f"sqlite:///{tmp_path / 'h.db'}", "var_dir": str(tmp_path / "var"),
                        "mode": mode, "secret_key": "k" * 40, "esl": "127.0.0.1:8021:a-real-esl-secret",
                        "HOTLINE_RECORD_KEY": "r" * 40, "load_demo": True})


def test_production_loads_no_demo_accounts_and_create_admin_makes_the_first_one(tmp_path, monkeypatch):
    """Should refuse the demo data set (one published password) in production, and create a working
    administrator with the command; a short password or a taken number is refused with exit status 2."""
    from caseflow.models import User
    from hotline.schema import all_models, create_schema

    config = _config(tmp_path, "production")
    bind_database(config.database_url)
    with database.connection_context():
        create_schema(all_models())
    assert load_demo_if_empty(config) == []
    with database.connection_context():
        assert User.select().count() == 0

    monkeypatch.setenv("HOTLINE_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.setenv("HOTLINE_DATABASE_URL", config.database_url)
    monkeypatch.setenv("HOTLINE_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("HOTLINE_ADMIN_PASSWORD", "short")
    assert create_admin_command(["create-admin", "A100", "张管理"]) == 2
    monkeypatch.setenv("HOTLINE_ADMIN_PASSWORD", "correct horse battery")
    assert create_admin_command(["create-admin", "A100", "张管理"]) == 0
    assert create_admin_command(["create-admin", "A100", "another"]) == 2  # the number is taken
    with database.connection_context():
        admin = User.get(User.operator_no == "A100")
        assert admin.has_role("admin") and accounts.verify_password(admin.password_hash, "correct horse battery")
    database.close()


def test_development_still_loads_the_demo(tmp_path):
    """Should keep loading the demo accounts in development (make run)."""
    from hotline.schema import all_models, create_schema

    config = _config(tmp_path, "development")
    bind_database(config.database_url)
    with database.connection_context():
        create_schema(all_models())
    assert any(role == "admin" for _no, _name, role, _pw in load_demo_if_empty(config))
    database.close()


@pytest.fixture(autouse=True)
def _cheap_hashes(monkeypatch):
    monkeypatch.setenv("HOTLINE_ARGON2_PROFILE", "cheapest")
