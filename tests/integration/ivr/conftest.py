"""Fixtures for IVR integration tests: a Config in a temporary directory, the tree store and the services."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.config import load_config
from ivr.prompts import LANGUAGES, prompt_keys, prompts_file, render_all
from ivr.services import HotlineIvrServices
from ivr.store import TreeStore

SOUNDS = Path(__file__).resolve().parents[3] / "sounds"


@pytest.fixture(scope="session")
def rendered_sounds(tmp_path_factory):
    """Every prompt rendered for real once per test session (the fake switch only plays files that exist)."""
    root = tmp_path_factory.mktemp("sounds")
    for lang in LANGUAGES:
        shutil.copy(prompts_file(SOUNDS, lang), root)
    render_all(root, 8000)
    return root


@pytest.fixture
def ivr_config(tmp_path):
    """A Config whose var, sounds and recordings live under tmp_path (sounds: the prompt texts only)."""
    sounds = tmp_path / "sounds"
    sounds.mkdir()
    for lang in LANGUAGES:
        shutil.copy(prompts_file(SOUNDS, lang), sounds)
    return load_config({"var_dir": str(tmp_path / "var"), "sounds_dir": str(sounds),
                        "recordings_dir": str(tmp_path / "recordings"), "mode": "test",
                        "secret_key": "x" * 40})


@pytest.fixture
def trees(db):
    return TreeStore(prompt_keys=prompt_keys(SOUNDS))


@pytest.fixture
def ivr_services(db, ivr_config, trees):
    return HotlineIvrServices(config=ivr_config, trees=trees)
