"""Dispatch suggestions learned from the centre's own history (智能派单).

Past decisions are the closed tickets the centre dispatched: the words of title and content (jieba,
stats.keywords), the category and the region as tokens -> the department the centre's last dispatch (or
reopen) sent it to, leaving out tickets returned after it (a return says the department was wrong). A
TF-IDF vectoriser and a multinomial logistic regression (scikit-learn) learn it; the dispatcher sees the
three most likely departments with their probability on the dispatch form, never applied by itself, and
how often dispatchers took the suggestion is measured (``acceptance``). With too little history the model
is "cold" and says so. Nothing leaves the machine: the model is a file under the product's var directory.

The scheduler retrains nightly in a child process (``python -m stats.suggestions train``), so training
never holds up calls; the web process reloads the file when it changes (``SuggestionStore``).
"""
from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import pickle
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

from caseflow import workflow as wf
from caseflow.models import Department, Region, Ticket, TicketHistory
from core.db import database
from stats.keywords import document_tokens
from stats.models import DispatchSuggestion, SuggestionRun

log = logging.getLogger(__name__)

FORMAT = 1
MODEL_FILE = "dispatch-suggestions.pkl"
MIN_SAMPLES = 200         # labelled tickets before the model is trusted at all
MIN_PER_DEPARTMENT = 3    # a department seen fewer times cannot be learned (left out of the model)
MAX_SAMPLES = 100_000     # the most recent closed tickets read for one training
HOLDOUT = 0.2             # share held out to measure accuracy before the final fit on everything
TRAIN_TIMEOUT = 3600
DISPATCH_ACTIONS = ("dispatch", "reopen")
RETURN_ACTIONS = ("return",)
LABEL_STATUSES = (wf.CLOSED, wf.ARCHIVED)


class SuggestionError(RuntimeError):
    """Training that cannot be done (the message says why)."""


@dataclass(frozen=True)
class Example:
    """One past decision: what the ticket said and where, and the department it went to."""

    title: str
    content: str
    category: int | None
    region: int | None
    department: int


def model_path(var_dir) -> Path:
    """Where the product keeps the model."""
    return Path(var_dir) / "models" / MODEL_FILE


# ------------------------------------------------------------------------------------------ features
def _given(tokens):
    """The vectoriser's analyser: the tokens are made beforehand (module level so the model pickles)."""
    return tokens


@dataclass(frozen=True)
class Places:
    """Parents of categories and regions, to add the wider node as a feature too (a street's district)."""

    category_parent: dict = field(default_factory=dict)
    region_parent: dict = field(default_factory=dict)

    @classmethod
    def load(cls) -> "Places":
        from caseflow.models import Category

        return cls(dict(Category.select(Category.id, Category.parent).tuples()),
                   dict(Region.select(Region.id, Region.parent).tuples()))


def features(title: str, content: str, category: int | None, region: int | None, places: Places) -> list[str]:
    """The tokens of one ticket: its content words, then category and region tokens (with their parents)."""
    extra = []
    for prefix, node, parents in (("cat:", category, places.category_parent), ("reg:", region, places.region_parent)):
        guard = 0
        while node is not None and guard < 5:
            extra.append(f"{prefix}{node}")
            node, guard = parents.get(node), guard + 1
    return document_tokens(title or "", content or "", extra)


# --------------------------------------------------------------------------------------------- data
def training_examples(limit: int = MAX_SAMPLES) -> list[Example]:
    """The most recent closed tickets (up to ``limit``) with the department the centre's last dispatch or
    reopen sent them to; a ticket returned after that dispatch, or whose department is gone or inactive,
    is left out."""
    recent = (Ticket.select(Ticket.id).where(Ticket.status.in_(LABEL_STATUSES))
              .order_by(Ticket.id.desc()).limit(limit))
    ids = [tid for (tid,) in recent.tuples()]
    if not ids:
        return []
    label: dict[int, int | None] = {}
    for start in range(0, len(ids), 5000):
        chunk = ids[start:start + 5000]
        rows = (TicketHistory.select(TicketHistory.ticket, TicketHistory.action, TicketHistory.department)
                .where(TicketHistory.ticket.in_(chunk) & TicketHistory.action.in_(DISPATCH_ACTIONS + RETURN_ACTIONS))
                .order_by(TicketHistory.ticket, TicketHistory.id).tuples())
        for ticket, action, department in rows:
            label[ticket] = department if action in DISPATCH_ACTIONS else None
    usable = {d for (d,) in Department.select(Department.id).where(Department.active & (Department.level >= 2)).tuples()}
    examples = []
    for start in range(0, len(ids), 5000):
        chunk = [tid for tid in ids[start:start + 5000] if label.get(tid) in usable]
        for tid, title, content, category, region in (Ticket.select(Ticket.id, Ticket.title, Ticket.content,
                                                                    Ticket.category, Ticket.region)
                                                      .where(Ticket.id.in_(chunk)).tuples()):
            examples.append(Example(title or "", content or "", category, region, label[tid]))
    return examples


# ---------------------------------------------------------------------------------------- the model
@dataclass
class Trained:
    """A fitted model with what it was trained on."""

    pipeline: object
    departments: list[int]
    samples: int
    top1: float | None
    top3: float | None
    seconds: float
    trained_at: dt.datetime
    run_id: int | None = None
    format: int = FORMAT


@dataclass(frozen=True)
class Outcome:
    """One training's result: the model (None when cold) and the run's row."""

    trained: Trained | None
    state: str
    message: str
    samples: int
    departments: int


def _pipeline():
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    return Pipeline([("tfidf", TfidfVectorizer(analyzer=_given, sublinear_tf=True, min_df=1)),
                     # saga on sparse TF-IDF: a tenth of lbfgs's time here for the same accuracy
                     ("clf", LogisticRegression(C=10.0, solver="saga", max_iter=300, tol=1e-3))])


def top_k_accuracy(probabilities, classes: Sequence, truth: Sequence, k: int) -> float:
    """Share of ``truth`` found among each row's ``k`` most probable classes."""
    import numpy as np

    if len(truth) == 0:
        return 0.0
    order = np.argsort(-probabilities, axis=1)[:, :k]
    picked = np.asarray(classes)[order]
    return float(np.mean([t in row for t, row in zip(truth, picked)]))


def fit(examples: Sequence[Example], places: Places, *, min_samples: int = MIN_SAMPLES,
        min_per_department: int = MIN_PER_DEPARTMENT, holdout: float = HOLDOUT, seed: int = 12345,
        now: dt.datetime | None = None) -> Outcome:
    """Train on ``examples``: held-out top-1/top-3 accuracy first, then the final fit on all of them. Cold
    (no model) when fewer than ``min_samples`` usable examples or fewer than two departments remain."""
    from collections import Counter

    started = time.perf_counter()
    per = Counter(e.department for e in examples)
    kept = [e for e in examples if per[e.department] >= min_per_department]
    departments = sorted({e.department for e in kept})
    if len(kept) < min_samples or len(departments) < 2:
        message = (f"冷启动：可用于学习的已办结派单工单 {len(kept)} 件，需至少 {min_samples} 件、2 个单位 / cold "
                   f"start: {len(kept)} closed dispatched tickets to learn from, {min_samples} and two departments "
                   f"needed")
        return Outcome(None, "cold", message, len(kept), len(departments))
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    tokens = [features(e.title, e.content, e.category, e.region, places) for e in kept]
    labels = [e.department for e in kept]
    top1 = top3 = None
    # Stratified: every department in both parts, so the held-out part needs at least one ticket of each.
    held = max(int(len(kept) * holdout), len(departments)) if holdout > 0 else 0
    if held and len(kept) - held >= len(departments):
        from sklearn.model_selection import train_test_split

        split = train_test_split(tokens, labels, test_size=held, random_state=seed, stratify=labels)
        train_x, test_x, train_y, test_y = split
        with warnings.catch_warnings():  # a few hundred passes are plenty for ranking departments
            warnings.simplefilter("ignore", ConvergenceWarning)
            probe = _pipeline().fit(train_x, train_y)
        probabilities = probe.predict_proba(test_x)
        classes = list(probe.classes_)
        top1 = top_k_accuracy(probabilities, classes, test_y, 1)
        top3 = top_k_accuracy(probabilities, classes, test_y, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipeline = _pipeline().fit(tokens, labels)
    seconds = time.perf_counter() - started
    trained = Trained(pipeline, [int(c) for c in pipeline.classes_], len(kept), top1, top3, seconds,
                      now or dt.datetime.now(dt.timezone.utc).replace(tzinfo=None))
    message = (f"已训练：{len(kept)} 件、{len(departments)} 个单位 / trained on {len(kept)} tickets, "
               f"{len(departments)} departments")
    return Outcome(trained, "trained", message, len(kept), len(departments))


def save(trained: Trained, path: Path) -> None:
    """Write the model atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=".partial-", suffix=".pkl")
    try:
        with os.fdopen(handle, "wb") as out:
            pickle.dump(trained, out, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise


def train_and_store(path: Path, now: dt.datetime, *, limit: int = MAX_SAMPLES, min_samples: int = MIN_SAMPLES) -> SuggestionRun:
    """Train from the database's history, write the model (or remove it when cold) and record the run."""
    started = time.perf_counter()
    try:
        outcome = fit(training_examples(limit), Places.load(), min_samples=min_samples, now=now)
    except Exception as exc:  # noqa: BLE001 - recorded as a failed run; the previous model stays in use
        log.exception("dispatch suggestions: training failed")
        return SuggestionRun.create(started_at=now, seconds=time.perf_counter() - started, state="failed",
                                    message=f"训练失败 / training failed: {exc}"[:255])
    run = SuggestionRun.create(started_at=now, seconds=time.perf_counter() - started, state=outcome.state,
                               samples=outcome.samples, departments=outcome.departments,
                               top1=outcome.trained.top1 if outcome.trained else None,
                               top3=outcome.trained.top3 if outcome.trained else None, message=outcome.message[:255])
    if outcome.trained is None:
        if path.exists():
            path.unlink()
    else:
        outcome.trained.run_id = run.id
        save(outcome.trained, path)
    log.info("dispatch suggestions: %s", outcome.message)
    return run


# --------------------------------------------------------------------------------------- suggesting
@dataclass(frozen=True)
class Suggestion:
    """The model's proposal for one ticket: up to three (department, probability), best first; or why none."""

    choices: tuple[tuple[Department, float], ...] = ()
    state: str = "cold"   # ready, cold
    run_id: int | None = None

    @property
    def ready(self) -> bool:
        return self.state == "ready" and bool(self.choices)


class SuggestionStore:
    """The model file as the web process sees it: loaded on first use and again whenever the file
    changes (the nightly child process replaced it); None while there is none."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp = None
        self._model: Trained | None = None

    def current(self) -> Trained | None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._stamp, self._model = None, None
            return None
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            with self._lock:
                if stamp != self._stamp:
                    try:
                        with self.path.open("rb") as handle:
                            # Our own file under var/ (written by save above), never one from outside.
                            model = pickle.load(handle)
                    except Exception:  # noqa: BLE001 - a bad file means no suggestions, logged
                        log.exception("dispatch suggestions: cannot read %s", self.path)
                        model = None
                    if model is not None and getattr(model, "format", None) != FORMAT:
                        log.warning("dispatch suggestions: %s has another format; retraining will replace it", self.path)
                        model = None
                    self._model, self._stamp = model, stamp
        return self._model

    def ranked(self, title: str, content: str, category: int | None, region: int | None, places: Places,
               limit: int = 20) -> tuple[list[tuple[int, float]], int | None]:
        """The model's departments (id, probability), most likely first, up to ``limit``, and its run id;
        [] without a model."""
        model = self.current()
        if model is None:
            return [], None
        probabilities = model.pipeline.predict_proba([features(title, content, category, region, places)])[0]
        classes = list(model.pipeline.classes_)
        order = sorted(range(len(classes)), key=lambda i: -probabilities[i])[:limit]
        return [(int(classes[i]), float(probabilities[i])) for i in order], model.run_id

    def suggest(self, ticket: Ticket, *, places: Places | None = None, limit: int = 3) -> Suggestion:
        """The top ``limit`` active departments for ``ticket`` with their probability."""
        if self.current() is None:
            return Suggestion()
        ranked, run_id = self.ranked(ticket.title, ticket.content, ticket.category_id, ticket.region_id,
                                     places or Places.load(), limit=10_000)
        return choose(ranked, run_id, limit)


def choose(ranked: Sequence[tuple[int, float]], run_id: int | None, limit: int = 3) -> Suggestion:
    """The first ``limit`` of ``ranked`` (department id, probability) whose department is active."""
    active = {d.id: d for d in Department.select().where(Department.id.in_([d for d, _p in ranked] or [0])
                                                         & Department.active)}
    choices = tuple((active[d], p) for d, p in ranked if d in active)[:limit]
    return Suggestion(choices, "ready", run_id)


def record_shown(ticket: Ticket, suggestion: Suggestion, now: dt.datetime) -> None:
    """Keep the suggestion shown for ``ticket`` (the latest one), to measure acceptance."""
    if not suggestion.ready:
        return
    ids = [d.id for d, _p in suggestion.choices] + [None, None]
    values = {"run": suggestion.run_id if SuggestionRun.get_or_none(SuggestionRun.id == suggestion.run_id) else None,
              "shown_at": now, "first": ids[0], "second": ids[1], "third": ids[2],
              "confidence": round(suggestion.choices[0][1], 4)}
    with database.atomic():
        updated = DispatchSuggestion.update(**values).where(DispatchSuggestion.ticket == ticket.id).execute()
        if not updated:
            DispatchSuggestion.create(ticket=ticket.id, **values)


@dataclass(frozen=True)
class Acceptance:
    """How dispatchers used the suggestions shown since a moment."""

    shown: int
    dispatched: int
    took_first: int
    within_three: int

    def rate(self, part: int) -> float | None:
        return None if self.dispatched == 0 else part / self.dispatched


def acceptance(since: dt.datetime) -> Acceptance:
    """Of the tickets shown a suggestion since ``since``, how many were then dispatched, to the first
    suggestion, or to one of the three."""
    shown = list(DispatchSuggestion.select().where(DispatchSuggestion.shown_at >= since))
    if not shown:
        return Acceptance(0, 0, 0, 0)
    by_ticket = {s.ticket_id: s for s in shown}
    first_dispatch: dict[int, int] = {}
    ids = list(by_ticket)
    for start in range(0, len(ids), 5000):
        rows = (TicketHistory.select(TicketHistory.ticket, TicketHistory.department, TicketHistory.at)
                .where(TicketHistory.ticket.in_(ids[start:start + 5000]) & (TicketHistory.action == "dispatch"))
                .order_by(TicketHistory.id).tuples())
        for ticket, department, at in rows:
            if ticket not in first_dispatch and at >= by_ticket[ticket].shown_at - dt.timedelta(seconds=1):
                first_dispatch[ticket] = department
    took = sum(1 for t, d in first_dispatch.items() if d == by_ticket[t].first_id)
    within = sum(1 for t, d in first_dispatch.items()
                 if d in (by_ticket[t].first_id, by_ticket[t].second_id, by_ticket[t].third_id))
    return Acceptance(len(shown), len(first_dispatch), took, within)


def latest_run() -> SuggestionRun | None:
    """The most recent training run."""
    return SuggestionRun.select().order_by(SuggestionRun.id.desc()).first()


# ------------------------------------------------------------------------------------ the schedule
def retrain_runner(config, python: str = sys.executable) -> Callable[[], int]:
    """Nightly training as a child process (``python -m stats.suggestions train``) at low priority: the
    fitting never holds up the product's calls. Returns the child's exit status; failures are logged."""
    from core.config import PROJECT_ROOT

    env = {**os.environ, "HOTLINE_DATABASE_URL": config.database_url, "HOTLINE_VAR_DIR": str(config.var_dir),
           "HOTLINE_MODE": config.mode, "HOTLINE_SECRET_KEY": config.secret_key}
    path = model_path(config.var_dir)

    def run() -> int:
        command = [python, "-m", "stats.suggestions", "train", "--model", str(path)]
        if hasattr(os, "nice"):
            command = ["nice", "-n", "10", *command]
        try:
            done = subprocess.run(command, env=env, cwd=str(PROJECT_ROOT), capture_output=True, text=True,
                                  timeout=TRAIN_TIMEOUT)
        except subprocess.TimeoutExpired:
            log.error("dispatch suggestions: training gave no result within %d s", TRAIN_TIMEOUT)
            return -1
        except OSError as exc:
            log.error("dispatch suggestions: cannot start the training: %s", exc)
            return -1
        if done.returncode != 0:
            log.error("dispatch suggestions: training failed: %s", (done.stderr or "").strip()[-500:])
        else:
            log.info("dispatch suggestions: %s", (done.stdout or "").strip()[-300:])
        return done.returncode
    return run


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m stats.suggestions train --model PATH`` on the database of HOTLINE_DATABASE_URL."""
    parser = argparse.ArgumentParser(prog="python -m stats.suggestions")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train the dispatch suggestion model from the closed tickets")
    train.add_argument("--model", help="where to write the model (default: var/models/...)")
    args = parser.parse_args(argv)
    from core.config import load_config
    from core.db import bind_database

    config = load_config()
    bind_database(config.database_url)
    path = Path(args.model) if args.model else model_path(config.var_dir)
    with database.connection_context():
        run = train_and_store(path, dt.datetime.now(dt.timezone.utc).replace(tzinfo=None))
    print(run.message)
    return 0 if run.state in ("trained", "cold") else 1


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # Through the imported module, not this __main__ copy: the model pickles its classes and the analyser by
    # module name, and a process reading it knows stats.suggestions, never this child's __main__.
    from stats import suggestions as importable

    raise SystemExit(importable.main())
