"""Opinion polls the IVR plays (民意调查): an administrator creates one from text and chooses the active one."""
from __future__ import annotations

import logging

from ivr.models import Poll, PollAnswer, PollQuestion

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
            raise ValueError(f"问题 {line.strip()[:40]!r} 须为1-{MAX_QUESTION}字 / question {line.strip()[:40]!r}: 1 to "
                             f"{MAX_QUESTION} characters")
        if not choices or not all(c in "0123456789" for c in choices) or len(set(choices)) != len(choices):
            raise ValueError(f"问题 {question[:40]!r} 的按键须为不重复的数字，例如 123 / question {question[:40]!r}: keys "
                             f"must be distinct digits, e.g. 123")
        questions.append((question, choices))
    if not questions:
        raise ValueError("调查至少要有一个问题 / a poll needs at least one question")
    return questions


def create_poll(title: str, questions_text: str) -> Poll:
    """A new (inactive) poll from a title and ``parse_questions`` text; ValueError says what is wrong."""
    title = (title or "").strip()
    if not title or len(title) > MAX_TITLE:
        raise ValueError(f"标题须为1-{MAX_TITLE}字 / title: 1 to {MAX_TITLE} characters")
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


class PollError(ValueError):
    """A web answer refused; ``status`` is the HTTP status the page answers with."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def active_poll() -> Poll | None:
    """The poll the administrator made active (the one the IVR plays), or None."""
    return Poll.select().where(Poll.active).order_by(Poll.id.desc()).first()


def questions_of(poll: Poll) -> list[PollQuestion]:
    """The poll's questions in the order the phone asks them."""
    return list(poll.questions.order_by(PollQuestion.position, PollQuestion.id))


def choice_names(question: PollQuestion) -> list[tuple[str, str]]:
    """[(key, label)]: the labels the administrator gave ("满意|一般|不满意"), else the key itself."""
    labels = [label.strip() for label in (question.choice_labels or "").split("|")]
    return [(key, labels[i] if i < len(labels) and labels[i] else f"按键 {key} / key {key}")
            for i, key in enumerate(question.choices)]


def has_answered(poll: Poll, phone: str) -> bool:
    """True when this number answered the poll already, on the phone or on the web."""
    return (PollAnswer.select().join(PollQuestion).where((PollQuestion.poll == poll) & (PollAnswer.caller == phone))
            .exists())


def answer_on_web(poll: Poll, phone: str, answers: dict, source: str) -> None:
    """Record a web answer to every question, counted with the phone answers (the same rows, caller = the
    number, call_uuid = ``source``); one answer per phone number, on either channel."""
    if not phone:
        raise PollError("请填写电话号码 / a phone number is required")
    questions = questions_of(poll)
    for question in questions:
        value = str(answers.get(str(question.id)) or "")
        if len(value) != 1 or value not in question.choices:
            raise PollError(f"请回答：{question.text[:40]} / answer every question")
    with Poll._meta.database.atomic():
        if has_answered(poll, phone):
            raise PollError("该电话号码已参加过本次调查 / this phone number has answered this poll already", 409)
        for question in questions:
            PollAnswer.create(question=question, answer=str(answers[str(question.id)]),
                              caller=phone[:32], call_uuid=source[:64])
