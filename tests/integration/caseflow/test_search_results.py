"""The ticket text search's results against a brute-force reading of its rule (issue 15 item 7: whatever makes
the search fast at a million tickets must return the same rows in the same order), on both databases, over a
randomised set of tickets with Chinese words of one, two and three or more characters, Latin words, acceptance
numbers and phone numbers, spread over many id windows and departments."""
from __future__ import annotations

import datetime as dt
import random

import pytest

from caseflow import search, services
from caseflow import workflow as wf
from caseflow.models import Ticket

BASE = dt.datetime(2026, 1, 5, 9, 0)
WORDS = ["路", "灯", "噪", "路灯", "噪音", "扰民", "噪音扰民", "下水道", "占道经营", "共享单车", "东湖路", "光明路",
         "wifi", "5g", "v2", "abc", "12345", "13800138000", "13912345678", "20260105", "88881234"]
QUERIES = ["路", "灯", "噪", "路灯", "噪音", "噪声", "扰民", "噪声 扰民", "噪音扰民", "下水道", "占道 经营", "东湖路 路灯",
           "共享单车乱停", "wifi", "ＷＩＦＩ", "5g 信号", "abc12345", "12345", "13800138000", "13912345678 路灯",
           "20260105", "88881234", "量子计算机", "无此词", "光明 东湖", "v2 abc"]


def _make(rng: random.Random, o) -> None:
    """Three hundred tickets: ids spread over several of PostgreSQL's id buckets, random departments (held and
    handed down), recording users and statuses, text of two to five words; then thirty newest ones only their
    recording agent and the centre see, spread over 90,000 ids."""
    departments = [o.east, o.east_street, o.east_street2, o.west, o.west_street, o.bureau, None]
    statuses = [wf.RECORDED, wf.DISPATCHED, wf.IN_PROGRESS, wf.CLOSED]
    ticket_id = 0
    for n in range(300):
        ticket_id += rng.choice([1, 2, 7, 900, 5000])
        words = rng.sample(WORDS, rng.randint(2, 5))
        title, content = "".join(words[:2]), "，".join(words[2:])
        address = rng.choice(["", "东湖路12号", "光明路 88881234"])
        Ticket.create(id=ticket_id, number=str(30_000_000 + n), type="complaint", channel="phone",
                      status=rng.choice(statuses), title=title, content=content, citizen_address=address,
                      department=rng.choice(departments), upper_department=rng.choice(departments[:3] + [None] * 3),
                      created_by=rng.choice([o.agent, o.east_user, None]), created_at=BASE, updated_at=BASE,
                      search_text=search.index_text(title, content, address))
    # The newest tickets recorded by an agent and not dispatched yet, 90,000 ids of them: the departments' searches
    # find nothing in their first windows (PostgreSQL then looks for the department's newest ticket, below several
    # of the 32,768-id buckets, and sizes the next windows from the newest match down).
    for n in range(30):
        ticket_id += 3000
        words = rng.sample(WORDS, 3)
        Ticket.create(id=ticket_id, number=str(31_000_000 + n), type="complaint", channel="phone",
                      status=wf.RECORDED, title=words[0], content="，".join(words[1:]), created_by=o.agent,
                      created_at=BASE, updated_at=BASE, search_text=search.index_text(words[0], "，".join(words[1:])))


def _reference(rows: dict, query: str, limit: int, candidates: int) -> list[int]:
    """search_tickets' rule read over ``rows`` (id -> (tokens, title + content) of every ticket the user may
    see) in Python: candidates are the newest rows holding every query gram, then the newest holding any, then
    (under ten) the newest sharing a character, at most ``candidates``; those with a relevance above 0 ranked
    by relevance, then newest first."""
    grams = search.query_grams(query)
    newest = sorted(rows, reverse=True)
    found: list[int] = []

    def add(test) -> None:
        for i in newest:
            if len(found) < candidates and i not in found and test(rows[i][0]):
                found.append(i)

    if grams:
        add(lambda tokens: all(g in tokens for g in grams))
        if len(found) < candidates and len(grams) > 1:
            add(lambda tokens: any(g in tokens for g in grams))
        chars = [c for c in search.query_chars(query) if c not in grams]
        if len(found) < 10 and chars:
            add(lambda tokens: any(c in tokens for c in chars))
    scored = [(-value, -i) for i in found if (value := search.score(query, grams, *rows[i])) > 0]
    return [-i for _v, i in sorted(scored)[:limit]]


@pytest.mark.parametrize("seed", [1, 2])
def test_text_search_returns_what_its_rule_says(org_setup, monkeypatch, seed):
    """Should return, for every query and kind of user, the rows and order the brute-force rule gives, with few
    and with many candidates (the cut at the candidate count included), with small id windows and with a scope's
    departments paired with id buckets or not."""
    o = org_setup
    _make(random.Random(seed), o)
    monkeypatch.setattr(search, "FIRST_WINDOW", 4096)
    for candidates in (12, 300):
        monkeypatch.setattr(search, "CANDIDATES", candidates)
        # PostgreSQL: a district's windows by department/id-bucket pairs, or (over the cap) by its departments
        monkeypatch.setattr(search, "MAX_PAIRS", 256 if candidates == 300 else 6)
        for actor in (o.centre_user, o.east_user, o.east_street_user, o.west_user, o.entry, o.agent):
            rows = {t.id: (set(t.search_text.split()), f"{t.title or ''}{t.content or ''}")
                    for t in services.visible_tickets(actor).select_extend(Ticket.search_text)}
            for query in QUERIES:
                for limit in (5, 50):
                    got = [t.id for t in services.search_tickets(actor, text=query, limit=limit)]
                    assert got == _reference(rows, query, limit, candidates), (candidates, actor.operator_no,
                                                                              query, limit)
