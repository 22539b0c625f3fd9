"""The hotspot pieces that need no database: keywords of realistic tickets (jieba with the hotline's words,
synonyms and places), the spike rule on synthetic series (fires at the threshold, not before, not on a
topic that is always frequent), its settings, the word cloud's sizes."""
from __future__ import annotations

import pytest

from stats.hotspots import HotspotError, HotspotSettings, cloud, poisson_surprise, spikes
from stats.keywords import place_words, topics, words

SETTINGS = HotspotSettings(window_hours=3, baseline_windows=8, factor=3.0, min_count=5)


def test_water_outage_is_a_topic_in_every_wording():
    """Should find 停水 however the caller put it (停水, 没水, 断水) and leave the boilerplate and the place out."""
    places = place_words(["东湖区", "幸福街道"])
    for title, content in (("幸福街道停水", "市民来电反映：幸福街道幸福小区从今天早上开始停水，一直没有来水。希望尽快处理。"),
                           ("反映没水问题", "来电人称，幸福里3栋家里没水了，打电话也没人接。"),
                           ("", "幸福街道人民路附近断水一整天，请相关部门核实处理。")):
        found = topics(title, content, places=places)
        assert "停水" in found[:3], found
        assert not {"市民", "来电", "反映", "希望", "处理", "幸福街道", "幸福", "相关", "部门"} & set(found)


def test_words_skip_numbers_punctuation_and_single_characters():
    """Should keep content words only."""
    found = words("3栋502室，电压不稳！！ 2026年")
    assert "电压" in found and all(len(w) >= 2 and not any(c.isdigit() for c in w) for w in found)
    assert words("") == [] and topics("", "") == []


def test_place_words_drop_the_suffix():
    """Should treat 东湖区 and 东湖, 幸福街道 and 幸福 as place names."""
    assert {"东湖区", "东湖", "幸福街道", "幸福", "龙泉镇", "龙泉"} <= place_words(["东湖区", "幸福街道", "龙泉镇"])


def series(*counts):
    return list(counts) + [0] * (SETTINGS.baseline_windows + 1 - len(counts))


def test_rule_fires_at_min_count_on_a_quiet_topic():
    """Should stay quiet at 4 tickets and fire at 5 when the place never had the topic."""
    assert spikes({("street", 1, "停水"): series(4)}, SETTINGS) == []
    found = spikes({("street", 1, "停水"): series(5)}, SETTINGS)
    assert [s.key for s in found] == [("street", 1, "停水")] and found[0].baseline == 0


def test_rule_needs_the_factor_over_the_baseline():
    """Should not fire where the topic is always frequent (10 a window), and fire at 3x its mean."""
    always = [10] * (SETTINGS.baseline_windows + 1)
    assert spikes({("district", 2, "物业"): always}, SETTINGS) == []
    assert spikes({("district", 2, "物业"): [29] + [10] * SETTINGS.baseline_windows}, SETTINGS) == []
    assert len(spikes({("district", 2, "物业"): [30] + [10] * SETTINGS.baseline_windows}, SETTINGS)) == 1


def test_rule_orders_by_surprise():
    """Should put the less likely spike first."""
    found = spikes({("street", 1, "停水"): series(12), ("street", 2, "停电"): series(6, 1, 1)}, SETTINGS)
    assert [s.key[2] for s in found] == ["停水", "停电"]
    assert poisson_surprise(12, 0.1) > poisson_surprise(6, 0.25) > 0


def test_rule_on_a_sliding_series_fires_once_then_the_baseline_absorbs_it():
    """Should fire in the spike's window only: windows later, the spike sits in the baseline and a normal
    count does not fire."""
    history = [0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 7, 1, 0, 0]  # oldest first; window 10 is the spike
    fired = []
    for end in range(SETTINGS.baseline_windows + 1, len(history) + 1):
        window = list(reversed(history[end - SETTINGS.baseline_windows - 1:end]))
        if spikes({("street", 1, "停水"): window}, SETTINGS):
            fired.append(end - 1)
    assert fired == [10]


@pytest.mark.parametrize("name,value", [("WINDOW_HOURS", "0"), ("FACTOR", "abc"), ("MIN_COUNT", "-1"),
                                         ("FACTOR", "nan"), ("BASELINE_WINDOWS", "５")])
def test_bad_settings_are_refused(name, value):
    """Should name the setting in the error."""
    with pytest.raises(HotspotError, match=f"HOTLINE_HOTSPOT_{name}"):
        HotspotSettings.from_extra({f"HOTLINE_HOTSPOT_{name}": value})


def test_settings_from_the_environment():
    """Should read each knob."""
    made = HotspotSettings.from_extra({"HOTLINE_HOTSPOT_WINDOW_HOURS": "6", "HOTLINE_HOTSPOT_FACTOR": "2.5",
                                       "HOTLINE_HOTSPOT_MIN_COUNT": "8", "HOTLINE_HOTSPOT_BASELINE_WINDOWS": "28"})
    assert (made.window_hours, made.factor, made.min_count, made.baseline_windows) == (6, 2.5, 8, 28)
    assert made.horizon.total_seconds() == 6 * 29 * 3600


def test_cloud_sizes_on_a_log_scale():
    """Should give the most frequent topic the largest step, the least the smallest, alphabetically."""
    made = cloud({"停水": 100, "停电": 10, "噪音扰民": 1})
    sizes = {t: step for t, _n, step in made}
    assert sizes["停水"] == 6 and sizes["噪音扰民"] == 1 and 1 < sizes["停电"] < 6
    assert [t for t, _n, _s in made] == sorted(sizes)
    assert cloud({}) == [] and cloud({"停水": 3}) == [("停水", 3, 6)]
