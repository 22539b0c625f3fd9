"""core.shared_files and HOTLINE_SHARED_DIR: the files every node sees under one path, checked."""
from __future__ import annotations

import os

import pytest

from core.config import ConfigError, load_config
from core.shared_files import MARKER, check, seed_sounds


def _config(tmp_path, **extra):
    return load_config({"var_dir": str(tmp_path / "var"), "mode": "test", "secret_key": "s" * 40, **extra})


def test_directories_follow_the_shared_path_unless_set(tmp_path):
    """Should put recordings, fax, attachments and sounds under HOTLINE_SHARED_DIR; an explicit one wins; an
    empty value means none."""
    shared = tmp_path / "shared"
    config = _config(tmp_path, HOTLINE_SHARED_DIR=str(shared), HOTLINE_FAX_DIR=str(tmp_path / "fax"))
    assert (config.recordings_dir, config.attachments_dir, config.sounds_dir) == (
        shared / "recordings", shared / "attachments", shared / "sounds")
    assert config.fax_dir == tmp_path / "fax"
    plain = _config(tmp_path, HOTLINE_SHARED_DIR="  ")
    assert plain.shared_dir is None and plain.recordings_dir == tmp_path / "var" / "recordings"


def test_check_makes_the_folders_and_writes_the_marker_then_accepts_it(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    config = _config(tmp_path, HOTLINE_SHARED_DIR=str(shared))
    done = check(config, "postgresql:1/hotline/public", create=True)
    assert all((shared / folder).is_dir() for folder in ("recordings", "fax", "attachments", "sounds"))
    assert (shared / MARKER).read_text().strip() == "postgresql:1/hotline/public"
    assert any("wrote" in line for line in done)
    assert check(config, "postgresql:1/hotline/public", create=False) == []


@pytest.mark.parametrize("case, message", [
    ("relative", "absolute path"),
    ("missing", "not a directory"),
    ("outside", "outside HOTLINE_SHARED_DIR"),
    ("link_out", "outside HOTLINE_SHARED_DIR"),
    ("no_marker", "holds no .hotline-storage"),
    ("other_database", "belongs to another database"),
])
def test_check_refuses_what_is_not_the_shared_storage(tmp_path, case, message):
    """Should refuse, saying why: a relative or missing path, a folder outside it (set so, or through a
    symbolic link), a worker's path without the call process's marker, a marker of another database."""
    shared = tmp_path / "shared"
    shared.mkdir()
    extra = {"HOTLINE_SHARED_DIR": str(shared)}
    create = True
    if case == "relative":
        extra["HOTLINE_SHARED_DIR"] = "shared"
    elif case == "missing":
        extra["HOTLINE_SHARED_DIR"] = str(tmp_path / "not-mounted")
    elif case == "outside":
        extra["HOTLINE_RECORDINGS_DIR"] = str(tmp_path / "local-recordings")
    elif case == "link_out":
        (tmp_path / "elsewhere").mkdir()
        os.symlink(tmp_path / "elsewhere", shared / "attachments")
    elif case == "no_marker":
        create = False
    elif case == "other_database":
        (shared / MARKER).write_text("postgresql:2/other/public\n")
    with pytest.raises(ConfigError, match=message):
        check(_config(tmp_path, **extra), "postgresql:1/hotline/public", create=create)


def test_seed_copies_the_shipped_prompts_where_absent_and_keeps_edits(tmp_path):
    shipped, target = tmp_path / "shipped", tmp_path / "shared" / "sounds"
    (shipped / "zh").mkdir(parents=True)
    (shipped / ".cache").mkdir()
    (shipped / "prompts.zh.toml").write_text("welcome = '欢迎'\n")
    (shipped / "zh" / "welcome.wav").write_bytes(b"RIFF")
    (shipped / ".cache" / "x.wav").write_bytes(b"RIFF")
    target.mkdir(parents=True)
    (target / "prompts.zh.toml").write_text("welcome = '已改'\n")
    assert seed_sounds(shipped, target) == 1
    assert (target / "prompts.zh.toml").read_text() == "welcome = '已改'\n"
    assert (target / "zh" / "welcome.wav").read_bytes() == b"RIFF" and not (target / ".cache").exists()
    assert seed_sounds(shipped, target) == 0
