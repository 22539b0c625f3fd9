"""Pure parts of search (n-gram cutting, scoring) and privacy masks."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from caseflow import privacy, search


def test_index_grams_cjk_and_latin():
    """Should index CJK runs as single characters plus bigrams, Latin text as lower-case words."""
    grams = search.index_grams("噪音扰民 WiFi 12345")
    assert {"噪", "音", "扰", "民", "噪音", "音扰", "扰民", "wifi", "12345"} == set(grams)


def test_full_width_text_normalised():
    """Should normalise full-width letters and digits before indexing."""
    assert "abc123" in search.index_grams("ＡＢＣ１２３")


def test_query_grams_variation():
    """Should cut 噪声 扰民 into bigrams, one of which (扰民) is in 噪音扰民."""
    q = search.query_grams("噪声 扰民")
    assert q == ["噪声", "扰民"]
    assert set(q) & set(search.index_grams("噪音扰民"))


def test_query_single_character_and_punctuation():
    """Should keep a one-character query and ignore punctuation and quotes (no query syntax leaks)."""
    assert search.query_grams("噪") == ["噪"]
    assert search.query_grams('"OR" * ( ) -- ；') == ["or"]


def test_score_exact_substring_first():
    """Should rank an exact substring above a partial match."""
    q = "噪音扰民"
    grams = search.query_grams(q)
    exact = search.score(q, grams, search.index_text("夜间噪音扰民"), "夜间噪音扰民")
    partial = search.score(q, grams, search.index_text("广场舞扰民"), "广场舞扰民")
    assert exact > partial > 0


@pytest.mark.parametrize("name,masked", [("张三", "张*"), ("欧阳娜娜", "欧阳**"), ("李", "李"),
                                         ("王小明", "王**"), ("John Smith", "J*** S****"), ("", "")])
def test_mask_name(name, masked):
    """Should keep the surname and mask the rest."""
    assert privacy.mask_name(name) == masked


@pytest.mark.parametrize("phone,masked", [("13800000000", "138****0000"), ("+8613812345678", "861****5678"),
                                          ("057186000001", "057****0001"), ("86000001", "86****01"),
                                          ("110", "*10"), ("", "")])
def test_mask_phone(phone, masked):
    """Should show the first three and last four digits of a mobile number, less of short numbers."""
    assert privacy.mask_phone(phone) == masked


def test_mask_text_inside_free_text():
    """Should mask the citizen's own name and number where they appear in the content."""
    t = SimpleNamespace(citizen_phone="13812345678", citizen_name="张三丰")
    assert privacy.mask_text("我是张三丰，电话13812345678", t) == "我是张**，电话138****5678"


def test_public_sees_masks():
    """Should deny full contact to the public (no user)."""
    assert privacy.may_see_contact(None, SimpleNamespace()) is False


def test_highlight_marks_query_words_in_a_window():
    """Should mark the query's bigrams (full-width and upper case too), fall back to single characters, and
    cut a long text to a window around the first match with … at the cuts."""
    assert search.highlight("夜间施工噪音扰民 ＷｉＦｉ", "噪声 扰民 wifi") == [
        ("夜间施工噪音", False), ("扰民", True), (" ", False), ("ＷｉＦｉ", True)]
    assert search.highlight("噪音很大", "噪声") == [("噪", True), ("音很大", False)]
    long = "前" * 100 + "扰民\n\n处理" + "后" * 100
    pieces = search.highlight(long, "扰民", width=20)
    assert pieces[0] == ("…", False) and pieces[-1] == ("…", False)
    assert ("扰民", True) in pieces and " 处理" in "".join(text for text, _hit in pieces)
    assert search.highlight("无关内容", "噪声") == [("无关内容", False)]
    assert search.highlight("", "噪声") == []


def test_public_text_masks_contact_address_and_numbers_in_free_text():
    """Should mask the citizen's name, phone, e-mail and address (also its tail repeated in the text),
    any other phone-like number and e-mail address, and leave dates alone (the public website)."""
    from types import SimpleNamespace

    from caseflow.privacy import public_text

    ticket = SimpleNamespace(citizen_phone="13812345678", citizen_name="张三丰", citizen_address="东湖区建设路18号3栋",
                             citizen_email="zs@example.cn", anonymous=False)
    text = ("我是张三丰，电话13812345678，住东湖区建设路18号3栋；建设路18号3栋门口施工。邮箱zs@example.cn，"
            "另一号码 139 1234 5678，身份证110101199003071234，2026-03-04 起。")
    shown = public_text(text, ticket)
    for secret in ("张三丰", "13812345678", "建设路18号3栋", "zs@example.cn", "139 1234 5678", "110101199003071234"):
        assert secret not in shown, secret
    assert "张**" in shown and "138****5678" in shown and "2026-03-04" in shown


def test_mask_message_addresses():
    """Should mask an e-mail address's local part (keeping the domain), a phone as mask_phone does, and the
    contact details inside free text (not dates)."""
    from caseflow.privacy import mask_address, mask_contacts, mask_email

    assert mask_email("zhangsan@example.cn") == "z*******@example.cn"
    assert mask_email("a@b.cn") == "a*@b.cn"
    assert mask_address("13812345678") == "138****5678" and mask_address("") == ""
    assert mask_contacts("电话13912345678 邮箱 zs@example.cn 于2026-03-04") == "电话139****5678 邮箱 ***@*** 于2026-03-04"
