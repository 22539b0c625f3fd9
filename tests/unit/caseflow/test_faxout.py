"""Fax number and font checks for outbound faxes of ticket documents (pure, no database)."""
from __future__ import annotations

import pytest

from caseflow import faxout
from caseflow.services import TicketInputError


@pytest.mark.parametrize("raw,clean", [("0571-8888 8888", "057188888888"), ("+86 571 88888888", "+8657188888888"),
                                       ("(010) 12345", "01012345")])
def test_fax_numbers_cleaned(raw, clean):
    """Should drop spaces, dashes and brackets from a fax number."""
    assert faxout.clean_fax_number(raw) == clean


@pytest.mark.parametrize("raw", ["", "1234", "1" * 21, "0571;uuid_kill", "057188888888&hangup", "传真", "++123456"])
def test_bad_fax_numbers_refused(raw):
    """Should refuse empty, short, long and non-digit numbers with a zh/en message."""
    with pytest.raises(TicketInputError) as error:
        faxout.clean_fax_number(raw)
    assert " / " in str(error.value)


def test_configured_font_must_exist(tmp_path):
    """Should refuse a configured font path that does not exist, naming it."""
    with pytest.raises(faxout.FaxFontMissing) as error:
        faxout.find_font(str(tmp_path / "none.ttf"))
    assert "none.ttf" in str(error.value)
