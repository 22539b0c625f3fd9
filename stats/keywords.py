"""Chinese keywords of a ticket: jieba's segmenter (its dictionaries ship inside the package, nothing is
fetched) with the hotline's own words, boilerplate and place names left out, synonyms folded, and the
words ranked by jieba's shipped IDF table so each ticket keeps its few telling topics.

Pure apart from loading jieba's dictionary once per process (about a second; jieba caches the prefix
dictionary in the temporary directory). No database, no gevent.
"""
from __future__ import annotations

import logging
import re
import threading
from collections import Counter
from typing import Iterable, Sequence

log = logging.getLogger(__name__)

# Words a hotline writes as one that jieba's general dictionary splits or ranks low.
HOTLINE_WORDS = (
    "停水", "停电", "停气", "断水", "断电", "没水", "没电", "水压低", "占道经营", "噪音扰民", "乱停车", "违章停车",
    "垃圾清运", "拖欠工资", "欠薪", "网约车", "医保报销", "异地就医", "燃气泄漏", "路灯不亮", "井盖", "违章搭建",
    "群租房", "广场舞", "渣土车", "共享单车", "电动车", "充电桩", "学区", "低保", "公积金", "社保", "物业费",
    "油烟", "偷排", "黑臭水体", "红绿灯", "信号灯", "拒载", "绕路", "养老金", "新冠疫苗", "身份证", "户口",
)

# One topic for several ways of saying it (the spike rule counts tickets per topic).
SYNONYMS = {
    "断水": "停水", "没水": "停水", "停供水": "停水", "没有水": "停水",
    "断电": "停电", "没电": "停电", "跳闸": "停电",
    "断气": "停气",
    "欠薪": "拖欠工资", "讨薪": "拖欠工资",
    "信号灯": "红绿灯",
    "违章停车": "乱停车",
    "扰民": "噪音扰民",
}

# Words every ticket is written with (how citizens and agents frame a case), not what it is about.
STOPWORDS = frozenset("""
市民 来电 来电人 反映 反应 投诉 举报 咨询 求助 建议 表扬 诉求 问题 情况 希望 要求 请求 恳请 请 相关 部门 单位 有关
处理 解决 尽快 及时 核实 调查 落实 回复 答复 给予 协调 督促 帮助 一下 予以 进行 出现 发生 存在 表示 称 说 说明
小区 社区 街道 附近 周边 门口 这里 那里 地方 位置 一直 已经 目前 现在 今天 昨天 明天 早上 上午 下午 晚上 凌晨 最近
多次 多天 几天 一周 两天 三天 每天 经常 总是 还是 仍然 依然 还 没有 不能 无法 不 没 也 都 就 又 再 很 非常 比较 特别
我们 他们 自己 本人 家里 家中 我家 居民 业主 群众 大家 人员 工作人员 大量 严重 影响 生活 正常 造成 导致 由于 因为
所以 但是 而且 并且 以及 或者 如果 虽然 可以 能够 需要 应该 是否 什么 怎么 为什么 哪里 多少 怎样 如何 这个 那个
这些 那些 一个 一些 有些 没有人 开始 结束 时间 时候 期间 之后 之前 以来 至今 左右 目前为止 来 去 到 在 有 是 的 了
和 与 及 等 对 把 被 让 给 向 从 于 之 其 该 此 个 号 楼 单元 室 路 街 巷 村 镇 区 市 县 省 年 月 日 点 分 元 次
谢谢 感谢 您好 你好 喂 好的 嗯 啊 吧 呢 吗 呀 哦
网友 留言 说法 督办 人称 看到 任何 能来 未解决 管一管 派人 看看 给个 有人 一段 好几 好几天 一个多月 一个月 上周 前天 今天上午
今天早上 昨天晚上 昨天下午 半夜 每天早上 晚上十点 八点 之类 不知道 知道 了解 想 问 请问 办理 怎么 哪些 材料
""".split())

_PUNCT = re.compile(r"^[\W_]+$", re.UNICODE)
_NUMBERISH = re.compile(r"^[\d０-９.．%％a-zA-Z]+$")

_lock = threading.Lock()
_tokenizer = None
_idf: dict[str, float] | None = None
_median_idf = 10.0


def loaded() -> bool:
    """Whether the tokenizer is built already (building it takes a second of CPU, which a web request on
    the gevent hub should not pay: every call of the process would wait with it)."""
    return _tokenizer is not None


def tokenizer():
    """The process's jieba tokenizer with HOTLINE_WORDS added (built once, thread-safe)."""
    global _tokenizer
    if _tokenizer is None:
        with _lock:
            if _tokenizer is None:
                import jieba

                jieba.setLogLevel(logging.WARNING)  # "Building prefix dict ..." is not ours to print
                made = jieba.Tokenizer()
                made.initialize()
                for word in HOTLINE_WORDS:
                    made.add_word(word, freq=50000)
                _tokenizer = made
    return _tokenizer


def idf_table() -> tuple[dict[str, float], float]:
    """jieba's shipped IDF table (word -> inverse document frequency) and its median, for unknown words."""
    global _idf, _median_idf
    if _idf is None:
        with _lock:
            if _idf is None:
                from jieba.analyse.tfidf import DEFAULT_IDF, IDFLoader

                loader = IDFLoader(DEFAULT_IDF)
                table, median = loader.get_idf()
                _median_idf = float(median)
                _idf = dict(table)
    return _idf, _median_idf


def words(text: str, *, places: Iterable[str] = ()) -> list[str]:
    """The content words of ``text`` in order: segmented, synonyms folded, boilerplate, punctuation,
    numbers, single characters and the given place names left out."""
    if not text:
        return []
    skip = set(places)
    found = []
    for raw in tokenizer().lcut(str(text)[:5000]):
        word = raw.strip()
        if len(word) < 2 or _PUNCT.match(word) or _NUMBERISH.match(word):
            continue
        word = SYNONYMS.get(word, word)
        if word in STOPWORDS or word in skip:
            continue
        found.append(word)
    return found


def topics(title: str, content: str, *, limit: int = 6, places: Iterable[str] = ()) -> list[str]:
    """The ``limit`` most telling words of a ticket (TF x IDF over title and content, the title's words
    counted twice), best first; ties by first appearance. HOTLINE_WORDS always rank as telling."""
    places = tuple(places)
    title_words = words(title, places=places)
    counts = Counter(title_words + title_words + words(content, places=places))
    if not counts:
        return []
    idf, median = idf_table()
    order = {w: i for i, w in enumerate(dict.fromkeys(title_words + words(content, places=places)))}
    hotline = set(HOTLINE_WORDS) | set(SYNONYMS.values())

    def weight(word: str) -> float:
        base = max(idf.get(word, median), median) if word in hotline else idf.get(word, median)
        return counts[word] * base

    ranked = sorted(counts, key=lambda w: (-weight(w), order.get(w, 0)))
    return ranked[:limit]


def place_words(names: Sequence[str]) -> set[str]:
    """Region names and their segmented parts (东湖区 -> 东湖区, 东湖): what a topic must not be."""
    found = set()
    for name in names:
        name = (name or "").strip()
        if not name:
            continue
        found.add(name)
        for suffix in ("街道办事处", "街道", "社区", "区", "县", "镇", "乡", "市"):
            if name.endswith(suffix) and len(name) > len(suffix) + 1:
                found.add(name[: -len(suffix)])
                break
    return found


def document_tokens(title: str, content: str, extra: Iterable[str] = ()) -> list[str]:
    """The tokens the dispatch model reads: every content word of title and content plus ``extra`` feature
    tokens (the category and region as codes)."""
    return words(f"{title}\n{content}") + list(extra)
