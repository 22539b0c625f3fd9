"""Fixtures for the ESL codec tests: the real FreeSWITCH transcripts."""
from __future__ import annotations

import pytest

from switch import codec
from switch.transcript import load_transcript
from tests.fakeswitch.transcript import ESL_DIR

TRANSCRIPT_DIR = ESL_DIR
TRANSCRIPTS = sorted(TRANSCRIPT_DIR.glob("*.txt")) if TRANSCRIPT_DIR.is_dir() else []


def transcript_params():
    """One pytest param per transcript file (a skip marker when none are present)."""
    if not TRANSCRIPTS:
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"no transcripts under {TRANSCRIPT_DIR}"))]
    return [pytest.param(p, id=p.stem) for p in TRANSCRIPTS]


@pytest.fixture(scope="session")
def all_transcripts():
    """{file name: [WireLine]} for every transcript."""
    if not TRANSCRIPTS:
        pytest.skip(f"no transcripts under {TRANSCRIPT_DIR}")
    return {p.name: load_transcript(p) for p in TRANSCRIPTS}


@pytest.fixture(params=["python", "c"])
def codec_split(request):
    """Run a test once with switch.codec's pure-Python header-block split and once with its C accelerator
    (switch/_esl_split.c; skipped where make setup could not build it). Yields the split in use."""
    accelerated = request.param == "c"
    if codec.use_accelerator(accelerated) != accelerated:
        pytest.skip("switch._esl_split is not built (make setup builds it with gcc and the Python headers)")
    try:
        yield codec._split_block
    finally:
        codec.use_accelerator(True)
