"""The IVR node kinds that hold a dialogue of several steps with the caller: record / mailbox / voicemail
(record, confirm, file a ticket, tell its number), status query (number, confirm, PIN), consultation
(topic, send offer, fax number), poll (question after question) and the generic collect.

``DialogueNodes`` is mixed into ``ivr.engine.IvrEngine``: for a node of kind K the engine calls
``_enter_K(node, prefix)`` on entering it and ``_on_K(event)`` for each answer, and these methods use the
engine's helpers (``_wait``, ``_collect``, ``_enter``, ``_fail_or_retry``, ``_served``, ``_log``,
``_setting``, ``_max_retries``) and its state (``node``, ``scratch``, ``lang``, ``caller``). One-step kinds
(prompt, menu, queue, transfer, fax, satisfaction ...) stay in ivr/engine.py beside the loop.
"""
from __future__ import annotations

from typing import Any, Mapping

from ivr.messages import (CreateTicket, DigitsCollected, DiscardRecording, LoadPoll, Play, PollQuestion,
                          QueryStatus, Record, RecordPollAnswer, RequestMaterial, SaveAnswer, Say, Timeout)
from ivr.tree import CITIZEN_STATUSES, Node

STATUS_PROMPTS = {status: f"status_{status}" for status in CITIZEN_STATUSES}


class DialogueNodes:
    """The several-step node kinds of ``IvrEngine`` (a mixin: it has no state of its own)."""

    def _record_action(self) -> Record:
        node = self.node
        return Record(node.get("ticket_type", "complaint"), int(node.get("max_seconds", 120)),
                      int(node.get("silence_seconds", 5)))

    def _enter_record(self, node: Node, prefix: list) -> list:
        self.scratch.step = "recording"
        items = (node.get("prompt"),) if node.get("prompt") else ()
        head = [Play(items, self.lang)] if items else []
        return self._wait(prefix + head + [self._record_action()])

    _enter_mailbox = _enter_record
    _enter_voicemail = _enter_record

    def _confirms(self) -> bool:
        return self.node.kind != "voicemail" and self.node.get("confirm", True) is not False

    def _ask_confirm(self, prefix: list) -> list:
        self.scratch.step = "confirm"
        return self._collect(prefix, ("record_confirm",))

    def _re_record(self, prefix: list) -> list:
        self.scratch.step = "recording"
        return self._wait(prefix + [Play(("record_too_short",), self.lang), self._record_action()])

    def _create_ticket(self, confirmed: bool) -> list:
        path, ms = self.scratch.data["recording"]
        self.scratch.step = "creating"
        self._pending_recording = None  # from here the runner creates it even if the caller hangs up
        return self._wait([CreateTicket(self.node.get("ticket_type", "complaint"), self.caller, path, ms,
                                        confirmed=confirmed, lang=self.lang, destination=self.destination,
                                        reason=self.node.get("reason", ""))])

    def _on_record(self, event) -> list:
        node, s = self.node, self.scratch
        if s.step == "recording":
            if isinstance(event, Timeout):
                return self._fail_or_retry([], self._re_record, "recording timed out")
            min_ms = int(float(node.get("min_seconds", 2)) * 1000)
            heard = event.duration_ms if event.voiced_ms is None else event.voiced_ms
            useful = heard >= min_ms and bool(event.path)
            self._log(node.id, f"recorded {event.duration_ms} ms ({event.terminator or 'end'})")
            if event.terminator == "hangup":
                if useful:
                    self._pending_recording = (event.path, event.duration_ms, node.get("ticket_type", "complaint"),
                                            node.get("reason", ""))
                self._expect = ()
                return []
            if not useful:
                prefix = [DiscardRecording(event.path)] if event.path else []
                return self._fail_or_retry(prefix, self._re_record, "recording empty or too short")
            s.data["recording"] = (event.path, event.duration_ms)
            self._pending_recording = (event.path, event.duration_ms, node.get("ticket_type", "complaint"),
                                            node.get("reason", ""))
            if not self._confirms():
                return self._create_ticket(confirmed=True)
            return self._ask_confirm([])
        if s.step == "confirm":
            digits = event.digits
            self._log(node.id, "confirm menu", digits)
            if digits == "1":
                return self._create_ticket(confirmed=True)
            if digits == "2":
                return self._ask_confirm([Play((f"file:{s.data['recording'][0]}",), self.lang)])
            if digits == "3":
                self._pending_recording = None
                self._log(node.id, "recording cancelled")
                return self._enter(node.get("on_cancel"),
                                   [DiscardRecording(s.data["recording"][0]),
                                    Play(("record_cancelled",), self.lang)])
            # No answer or a wrong key, several times: keep the recording (flagged unconfirmed), do not lose it.
            s.retries += 1
            self._log(node.id, "no key" if digits == "" else "invalid key")
            if s.retries >= self._max_retries():
                return self._create_ticket(confirmed=False)
            invalid = self._setting(node, "invalid_prompt", "invalid_key")
            return self._ask_confirm([Play((invalid,), self.lang)] if digits else [])
        if s.step == "creating":
            self._pending_recording = None
            if not event.number:
                self._log(node.id, "ticket could not be created")
                return self._enter(node.get("on_fail"), [Play(("ticket_failed",), self.lang)])
            self.tickets.append(event.number)
            self._log(node.id, f"ticket {event.number}")
            self._served("voicemail" if node.kind == "voicemail" else "ticket")
            s.step = "told"
            if node.kind == "voicemail":
                return self._wait([Play(("message_saved",), self.lang)])
            return self._wait([Play(("acceptance_number",), self.lang), Say(event.number, self.lang),
                               Play(("ticket_thanks",), self.lang)])
        if s.step == "told":
            return self._enter(node.get("next"))
        return []

    _on_mailbox = _on_record
    _on_voicemail = _on_record

    # ------------------------------------------------------------ status query
    def _enter_status_query(self, node: Node, prefix: list) -> list:
        self.scratch.data["wrong"] = 0
        return self._ask_number(prefix)

    def _ask_number(self, prefix: list) -> list:
        self.scratch.step = "number"
        return self._collect(prefix, ("query_enter_number",), min_digits=1, max_digits=8,
                             timeout=float(self.node.get("entry_timeout", 10)))

    def _wrong(self, prefix: list, reason: str) -> list:
        """A wrong number/PIN: three of them end politely (or go to a person, the node's on_fail)."""
        s = self.scratch
        s.data["wrong"] += 1
        self._log(self.node.id, reason)
        if s.data["wrong"] >= int(self._setting(self.node, "max_retries", 3)):
            self._log(self.node.id, "too many wrong attempts")
            return self._enter(self.node.get("on_fail"), prefix + [Play(("query_too_many",), self.lang)])
        return self._ask_number(prefix)

    def _on_status_query(self, event) -> list:
        node, s = self.node, self.scratch
        if s.step == "number":
            digits = event.digits.rstrip("#")
            self._log(node.id, "number entered", digits)
            if len(digits) != 8 or not digits.isdigit():
                return self._wrong([Play((self._setting(node, "invalid_prompt", "invalid_key"),), self.lang)],
                                   "not an 8-digit number")
            s.data["number"] = digits
            s.step = "confirm"
            s.retries = 0
            return self._collect([Play(("query_you_entered",), self.lang), Say(digits, self.lang)],
                                 ("query_confirm",))
        if s.step == "confirm":
            self._log(node.id, "confirm", event.digits)
            if event.digits == "1":
                s.step = "lookup"
                return self._wait([QueryStatus(s.data["number"], self.caller, None)])
            if event.digits == "2":
                return self._ask_number([])
            return self._fail_or_retry([], lambda p: self._collect(
                p + [Play(("invalid_key",), self.lang)], ("query_confirm",)), "invalid key")
        if s.step in ("lookup", "lookup_pin"):
            if event.status in CITIZEN_STATUSES:
                self._log(node.id, f"status {event.status}")
                self._served("status")
                s.step = "told"
                return self._wait([Play(("status_is", STATUS_PROMPTS[event.status]), self.lang)])
            if s.step == "lookup":
                # The phone number does not match (or there is no such case: the caller cannot tell which).
                s.step = "pin"
                return self._collect([], ("query_enter_pin",), min_digits=1, max_digits=8,
                                     timeout=float(node.get("entry_timeout", 10)))
            return self._wrong([Play(("query_no_match",), self.lang)], "no match")
        if s.step == "pin":
            pin = event.digits.rstrip("#")
            self._log(node.id, "pin entered", "*" * len(pin))
            if not pin.isdigit():
                return self._wrong([Play(("query_no_match",), self.lang)], "no PIN")
            s.step = "lookup_pin"
            return self._wait([QueryStatus(s.data["number"], self.caller, pin)])
        if s.step == "told":
            return self._enter(node.get("next"))
        return []

    # ------------------------------------------------------------ consultation
    def _topics(self) -> dict[str, Mapping[str, Any]]:
        return {t["key"]: t for t in self.node.get("topics", [])}

    def _enter_consultation(self, node: Node, prefix: list) -> list:
        return self._ask_topic(prefix)

    def _ask_topic(self, prefix: list) -> list:
        self.scratch.step = "topic"
        return self._collect(prefix, (self.node.get("prompt") or "consult_menu",))

    def _ask_send(self, prefix: list) -> list:
        self.scratch.step = "send"
        return self._collect(prefix, ("consult_send_offer",))

    def _on_consultation(self, event) -> list:
        node, s = self.node, self.scratch
        if s.step == "topic":
            digits = event.digits
            self._log(node.id, "topic key", digits)
            if digits == "0":
                return self._enter(node.get("next"))
            if digits == "*":
                return self._ask_topic([])
            topic = self._topics().get(digits)
            if topic is None:
                why = "no key" if digits == "" else "invalid key"
                return self._fail_or_retry([], lambda p: self._ask_topic(
                    p + ([Play(("invalid_key",), self.lang)] if digits else [])), why)
            s.data["topic"] = topic
            if topic.get("prompt"):
                item = topic["prompt"]
            elif topic.get("kb_item"):
                item = f"kb:{topic['kb_item']}"
            else:
                item = f"tts:{topic['text']}"
            # The topic alone, answered by PromptDone: a caller who hangs up during it was not served,
            # one who heard it to the end was (whatever they do with the send offer).
            s.step = "playing"
            return self._wait([Play((item,), self.lang)])
        if s.step == "playing":
            self._log(node.id, "topic played")
            self._served("consultation")
            return self._ask_send([])
        if s.step == "send":
            digits = event.digits
            topic = s.data["topic"]
            title = str(topic.get("title") or topic.get("prompt") or topic.get("kb_item"))
            self._log(node.id, "send offer", digits)
            if digits in ("1", "2"):
                channel = "sms" if digits == "1" else "email"
                return self._ask_topic([RequestMaterial(title, channel, self.caller, self.caller if digits == "1"
                                                        else ""),
                                        Play(("consult_request_noted",), self.lang)])
            if digits == "3":
                s.step = "fax"
                return self._collect([], ("consult_fax_number",), min_digits=5, max_digits=20,
                                     timeout=float(node.get("entry_timeout", 10)))
            if digits in ("0", ""):
                return self._ask_topic([])
            return self._fail_or_retry([], lambda p: self._ask_send(p + [Play(("invalid_key",), self.lang)]),
                                       "invalid key")
        if s.step == "fax":
            number = event.digits.rstrip("#")
            self._log(node.id, "fax number", number)
            if not (number.isdigit() and 5 <= len(number) <= 20):
                return self._fail_or_retry([], lambda p: self._ask_send(p + [Play(("invalid_key",), self.lang)]),
                                           "invalid fax number")
            title = str(s.data["topic"].get("title") or s.data["topic"].get("prompt"))
            return self._ask_topic([RequestMaterial(title, "fax", self.caller, number),
                                    Play(("consult_request_noted",), self.lang)])
        return []

    # ------------------------------------------------------------ poll
    def _enter_poll(self, node: Node, prefix: list) -> list:
        self.scratch.step = "load"
        return self._wait(prefix + [LoadPoll()])

    def _ask_question(self, prefix: list) -> list:
        s = self.scratch
        question: PollQuestion = s.data["questions"][s.data["index"]]
        item = question.prompt or f"tts:{question.text}"
        s.step = "question"
        return self._collect(prefix, (item,))

    def _on_poll(self, event) -> list:
        node, s = self.node, self.scratch
        if s.step == "load":
            if event.poll_id is None or not event.questions:
                self._log(node.id, "no active poll")
                s.step = "told"
                return self._wait([Play(("poll_none",), self.lang)])
            s.data.update(poll=event.poll_id, questions=event.questions, index=0)
            return self._ask_question([Play(("poll_intro",), self.lang)])
        if s.step == "question":
            question: PollQuestion = s.data["questions"][s.data["index"]]
            digits = event.digits
            self._log(node.id, f"question {question.id}", digits)
            if len(digits) != 1 or digits not in question.choices:
                why = "no key" if digits == "" else "invalid key"
                return self._fail_or_retry([], lambda p: self._ask_question(
                    p + [Play(("invalid_key",), self.lang)]), why)
            answer = RecordPollAnswer(s.data["poll"], question.id, digits, self.caller)
            s.data["index"] += 1
            s.retries = 0
            if s.data["index"] >= len(s.data["questions"]):
                self._served("poll")
                s.step = "told"
                return self._wait([answer, Play(("poll_thanks",), self.lang)])
            return self._ask_question([answer])
        if s.step == "told":
            return self._enter(node.get("next"))
        return []

    # ------------------------------------------------------------ collect (generic digits into the trace)
    def _enter_collect(self, node: Node, prefix: list) -> list:
        high = int(node.get("max_digits", 8))
        return self._collect(prefix, (node.get("prompt"),), min_digits=int(node.get("min_digits", 1)),
                             max_digits=high, timeout=float(node.get("entry_timeout", 10)),
                             terminators="" if high == 1 else "#")

    def _on_collect(self, event: DigitsCollected) -> list:
        node = self.node
        digits = event.digits.rstrip("#")
        low, high = int(node.get("min_digits", 1)), int(node.get("max_digits", 8))
        choices = str(node.get("choices", ""))
        valid = digits.isdigit() and low <= len(digits) <= high and (not choices or digits in choices)
        if not valid:
            why = "no key" if digits == "" else "invalid entry"
            return self._fail_or_retry([], lambda p: self._enter_collect(node, p + (
                [Play((self._setting(node, "invalid_prompt", "invalid_key"),), self.lang)] if digits else [])), why)
        store = node.get("store")
        self._log(node.id, f"collected into {store or 'digits'}", digits)
        if store:
            self.answers[store] = digits
            return self._enter(node.get("next"), [SaveAnswer(store, digits)])
        return self._enter(node.get("next"))
