"""Opinion polls the IVR plays (民意调查): an administrator creates one from text and chooses the active one."""
from __future__ import annotations

import logging

from ivr.models import Poll, PollQuestion

log = logging.getLogger(__name__)

MAX_TITLE = 200
MAX_QUESTION = 500


def parse_questions(text: str) -> list[tuple[str, str]]:
    """"question | keys" lines -> [(question, keys)] (keys default to "12"); ValueError says which line is bad."""
    questions = []
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        question, sep, choices = line.rpartition("|")
        if not sep:
            question, choices = line, "12"
        question, choices = question.strip(), "".join(choices.split())
        if not question or len(question) > MAX_QUESTION:
            raise ValueError(f"question {line.strip()[:40]!r}: 1 to {MAX_QUESTION} characters")
        if not choices or not all(c in "0123456789" for c in choices) or len(set(choices)) != len(choices):
            raise ValueError(f"question {question[:40]!r}: keys must be distinct digits, e.g. 123")
        questions.append((question, choices))
    if not questions:
        raise ValueError("a poll needs at least one question")
    return questions


def create_poll(title: str, questions_text: str) -> Poll:
    """A new (inactive) poll from a title and ``parse_questions`` text; ValueError says what is wrong."""
    title = (title or "").strip()
    if not title or len(title) > MAX_TITLE:
        raise ValueError(f"title: 1 to {MAX_TITLE} characters")
    questions = parse_questions(questions_text)
    with Poll._meta.database.atomic():
        poll = Poll.create(title=title)
        for position, (text, choices) in enumerate(questions):
            PollQuestion.create(poll=poll, position=position, text=text, choices=choices)
    return poll


def activate_poll(poll: Poll) -> None:
    """Make ``poll`` the one the IVR plays (the others stop)."""
    with Poll._meta.database.atomic():
        Poll.update(active=False).where(Poll.id != poll.id).execute()
        Poll.update(active=True).where(Poll.id == poll.id).execute()
