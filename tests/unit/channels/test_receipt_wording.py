"""channels.messagelog's pattern of a receipt's PIN quoted after the receipt's wording (pure: the texts given)."""
from __future__ import annotations

from channels.messagelog import PIN_MASK, _masked_pin, _receipt_pins
from channels.templates import DEFAULTS


def masked(text: str, *texts: str) -> str:
    return _receipt_pins((DEFAULTS["receipt"].zh, DEFAULTS["receipt"].en, *texts)).sub(_masked_pin, text)


def test_the_pin_after_the_product_wordings_is_masked_and_other_numbers_kept():
    """Should mask the 6 digits after 查询码 / query code (any case, a quoted line break between the words, a
    colon before the digits) and keep 6 digits after other words, a longer run and the acceptance number."""
    assert masked("受理号12345678，查询码654321。") == f"受理号12345678，查询码{PIN_MASK}。"
    assert masked("> Query\n> code: 654321.") == f"> Query\n> code: {PIN_MASK}."
    kept = "灯杆编号654321，code 654321，查询码6543210，受理号12345678"
    assert masked(kept) == kept


def test_an_administrators_wording_counts_and_one_without_words_uses_the_number():
    """Should read the wording before {{ pin }} in an administrator's text (查询密码：), and where fewer than two
    letters stand before it, the acceptance number and what stands between; a text with neither adds nothing."""
    assert masked("查询密码： 654321", "受理号{{ number }}，查询密码：{{ pin }}。") == f"查询密码： {PIN_MASK}"
    assert masked("12345678/654321", "【12345】{{ number }}/{{ pin }}") == f"12345678/{PIN_MASK}"
    assert masked("12345678/654321") == "12345678/654321"
    assert masked("x 654321", "{{ pin }}") == "x 654321"
