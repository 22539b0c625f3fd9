"""The composition root: builds every part of the product from a Config and starts/stops them in order.

run.py calls ``Product(config).start()``; end-to-end tests build the same Product on a fake FreeSWITCH, so
what they test is what runs. Nothing here holds logic of its own beyond wiring.
Long because: the one place every part is built, started and stopped in order; each part's logic is elsewhere.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import peewee

from core.clock import Clock
from core.config import Config
from core.db import DbTimeouts, bind_database, database, start_wal_checkpointer
from hotline.ivr_services import HotlineIvrServices
from hotline.schema import all_models, create_schema
from hotline.seed import seed

log = logging.getLogger(__name__)


@dataclass
class Product:
    """Every long-lived part of the running hotline, wired together."""

    config: Config
    clock: Clock | None = None
    parts: dict[str, Any] = field(default_factory=dict)
    demo_accounts: list = field(default_factory=list)
    # With the demo data, also the demo queues and agents (tests of the no-queue fallback turn it off).
    demo_queues: bool = True
    # With the demo data, also weeks of past calls and tickets for the statistics page (run.py; tests skip it).
    demo_history: bool = False
    _bound: bool = field(default=False, init=False, repr=False)

    def build(self, schema: bool = True) -> "Product":
        """Open the database, create or upgrade the schema and load the demo data and menu tree (``seed``; neither
        with ``schema=False``, a standby's parts: ``stand_by``), and construct (not start) every part."""
        from recorder.dialout import DialOut
        from acd.dispatcher import Acd
        from acd.prompts import AcdPrompts
        from caseflow import jobs as case_jobs
        from caseflow import pins
        from channels import receipts
        from channels.service import EmailChannel, SmsChannel
        from ivr.prompts import call_time_renderer, prompt_keys
        from ivr.store import TreeStore
        from recorder.cdr import CdrRecorder
        from recorder.fax import FaxService
        from recorder.integrity import record_key
        from recorder.recording import RecordingService
        from recorder.storage import RecordingStore
        from switch.inbound import SwitchPool
        from switch.outbound import OutboundServer, PeerAllowList
        from webui.app import Services, create_app
        from webui.blueprints.portal import warm_up as portal_warm_up

        config = self.config
        self.clock = self.clock or Clock(config.tz)
        # The tickets' PINs' key before anything files or converts one (caseflow.pins; migration 0027).
        pins.install(pins.PinKeys.from_config(config))
        self._bind()
        if schema:
            self.prepare_schema()
        if config.shared_dir is not None:
            self._shared_files()
        if schema:
            self.seed()

        pool = SwitchPool(config.esl, api_timeout=config.esl_api_timeout,
                          heartbeat_timeout=config.esl_heartbeat_timeout)
        # The same key `python -m recorder.verify` and the call-records page check with.
        cdr = CdrRecorder(key=record_key(config.secret_key, config.extra), clock=self.clock)
        recordings = RecordingService(RecordingStore.from_config(config, clock=self.clock))
        acd_prompts = AcdPrompts(config.sounds_dir, render=call_time_renderer("zh", config.prompt_rate),
                                 switch_dir=config.switch_sounds_dir)
        acd = Acd(pool, clock=self.clock, prompts=acd_prompts)
        acd.dialout = DialOut.from_config(config, clock=self.clock)  # a bad HOTLINE_DIALOUT_* stops the start
        # Routes between FreeSWITCH servers: configured ones win over those the servers tell (acd.dispatcher).
        acd.settings.cross_server_dial = dict(config.cross_server_dial)
        acd.settings.refuse_placeholder_peer = config.is_production
        # With Kamailio in front (HOTLINE_KAMAILIO), agents' registrations are read from its location table.
        from hotline.kamailio import registrations_watch

        self.parts["kamailio"] = registrations_watch(config, acd)
        trees = TreeStore(prompt_keys=prompt_keys(config.sounds_dir))
        if schema:
            with database.connection_context():
                trees.ensure_default()
        fax = FaxService.from_config(config, clock=self.clock, cdr=cdr)
        ivr_services = HotlineIvrServices(config=config, trees=trees, recordings=recordings, acd=acd,
                                          clock=self.clock, cdr=cdr, fax=fax)
        import gevent

        bridge_recorder = attach_recorder(cdr, acd=acd, recordings=recordings, ivr_services=ivr_services,
                                          pool=pool, spawn=gevent.spawn)
        from ivr import sweep as ivr_sweep
        from recorder.sweep import Sweeper

        # Whenever the ACD reconciles with a switch, close the call records, recordings and campaign attempts
        # whose hang-up event was lost (restart, dropped events, the app killed); the IVR's part (its traces,
        # its campaign attempts) handed in, as the recorder sits below the IVR.
        self.parts["sweeper"] = Sweeper(cdr, recordings, servers=lambda: [c.name for c in pool.all()],
                                        call_history=ivr_sweep.call_history,
                                        lost_calls=ivr_sweep.fail_lost_attempts,
                                        unfiled_recordings=ivr_services.unfiled_recordings)
        acd.reconcilers.append(self.parts["sweeper"])
        # The door: HOTLINE_MAX_CALLS, and new calls refused (503, or the busy prompt) while the switch's replies
        # or the app's own loop are slow (switch.admission; a bad HOTLINE_OVERLOAD_* stops the start).
        from switch.admission import Admission, AdmissionLimits

        admission = Admission(AdmissionLimits.from_extra(config.extra, config.max_calls))
        busy_prompt = f"{config.switch_sounds_dir or config.sounds_dir}/zh/lines_busy.wav"
        outbound = OutboundServer(config.outbound[0], config.outbound[1], self._call_handler,
                                  max_calls=config.max_calls, allow=PeerAllowList.resolve(config.outbound_peers),
                                  admission=admission, busy_prompt=busy_prompt,
                                  on_setup_lost=self._call_lost_in_setup)
        # Each seat's own SIP password (acd.seats), rendered into the directory FreeSWITCH includes in product
        # mode (HOTLINE_FS_SEAT_PASSWORDS); the switches read it again after every change.
        seats = None
        if config.seat_passwords == "product":
            from acd.seats import SeatPasswords
            from switch.directory import DirectoryReloads
            from webui.acd_forms import directory_extensions

            from hotline.kamailio import subscriber_writer

            reloads = DirectoryReloads(pool)
            # With Kamailio in front, its credentials table follows every password too (docs/kamailio.md).
            seats = SeatPasswords(config.secret_key, lambda: directory_extensions(config), config.seats_dir,
                                  reload=reloads.changed, subscribers=subscriber_writer(config))
        self.parts["seats"] = seats
        self.parts.update(pool=pool, cdr=cdr, recordings=recordings, acd=acd, trees=trees,
                          bridge_recorder=bridge_recorder,
                          ivr_services=ivr_services, fax=fax, outbound=outbound)

        # The pub/sub bus between processes (PostgreSQL LISTEN/NOTIFY; in the process with SQLite): the ACD's
        # notices go out on it for the agent desks' event streams, in this process and in web workers.
        from core.pubsub import open_bus
        from webui.desk_feed import DeskFeed, tree_handback

        bus = open_bus(config.database_url)
        desk_feed = DeskFeed(acd, bus, tree_handback(trees))
        acd.subscribe(desk_feed.on_notice)
        self.parts.update(bus=bus, desk_feed=desk_feed)
        services = Services(
            switch_status=pool.status,  # {name: the connection's status dict}: state, dropped_events ...
            active_calls=lambda: outbound.active_calls,
            http_status=self._http_status,
            clock=self.clock,
            acd=acd, fax=fax, trees=trees, ivr_live=ivr_services.live, bus=bus, seats=seats,
        )
        # SMS (channels/): the outbox, notices from the ticket history, Kannel; its settings for /sms/*.
        sms = SmsChannel.from_config(config, clock=self.clock)
        services.sms_settings = sms.settings
        self.parts["sms"] = sms
        # E-mail (channels/): the IMAP reader and the SMTP outbox; off (logged once) without mail servers.
        email_channel = EmailChannel.from_config(config, clock=self.clock)
        services.email_settings = email_channel.settings
        self.parts["email"] = email_channel
        # The receipts carrying a new ticket's PIN, queued with the ticket (the history comes too late for it).
        self.parts["receipts"] = receipts.connect(config, sms.settings, email_channel.settings)
        # Alarms (ops/): the periodic checks, the record chain and the daily backup; a bad HOTLINE_ALARM_* or
        # HOTLINE_BACKUP_* stops the start.
        from channels.alarms import DutyPhones
        from core import alarms as core_alarms
        from core.backup import BackupSettings
        from ops.alarms import AlarmService
        from ops.jobs import Checks, backup_runner, chain_verifier
        from ops.rules import Thresholds

        # The one alarm path: every alarm (the checks here, and whatever the recorder, the case engine and
        # the channels raise through core.alarms) is stored by ops, put on the centre's desk and texted to
        # the duty phones by the SMS channel.
        alarm_service = AlarmService(notify=DutyPhones(sms.settings, self.clock))
        core_alarms.connect(alarm_service.raise_alarm)
        self.parts["alarms"] = alarm_service
        self.parts["checks"] = Checks(
            alarm_service, Thresholds.from_extra(config.extra), switch_status=pool.status, acd=acd,
            storage={"recordings": config.recordings_dir, "attachments": config.attachments_dir,
                     "fax": config.fax_dir, "var": config.var_dir},
            verify_chain=chain_verifier(config), run_backup=backup_runner(config))
        self.parts["backup_settings"] = BackupSettings.from_config(config)
        # Hotspot warnings (stats/): topics indexed and scanned for spikes; a new warning goes to the duty
        # leader as an alarm. A bad HOTLINE_HOTSPOT_* stops the start.
        # They run in the analysis process (stats.analysis_process: jieba and scikit-learn never enter this
        # one), started and kept running here; this process's scheduler asks it, and the dispatch form asks it
        # for suggestions with a short timeout.
        from core.processes import Supervised
        from stats import analysis
        from stats.hotspots import HotspotSettings

        analysis_args, analysis_env = analysis.command(config)
        self.parts["analysis"] = Supervised("analysis process", analysis_args, env=analysis_env)
        services.analysis = self.parts["analysis_client"] = analysis.AnalysisClient(analysis.socket_path(config))
        self.parts["hotspots"] = analysis.RemoteHotspotJob(services.analysis, HotspotSettings.from_extra(config.extra),
                                                           alarm=self.parts["checks"].service.raise_alarm)
        self.parts["web_app"] = create_app(config, services)
        portal_warm_up(self.parts["web_app"])  # the portal's first visitors pay no template compiling
        self.parts["case_jobs"] = case_jobs
        return self

    def seed(self) -> None:
        """The demo data and the default menu tree (hotline.seed): only the process holding the active lock."""
        self.demo_accounts = seed(self.config, self.clock, queues=self.demo_queues, history=self.demo_history,
                                  trees=self.parts.get("trees"))

    def _bind(self) -> None:
        if not self._bound:
            bind_database(self.config.database_url, DbTimeouts.from_config(self.config))
            self._bound = True

    def prepare_schema(self, tables: bool = True) -> list[str]:
        """Create the missing tables and run this version's pending migration steps (not with ``tables=False``:
        the schema is known complete), make the search and statistics structures; returns the steps run. On
        PostgreSQL with the pair on, only the process that holds the active lock calls it (``stand_by``):
        never a standby under a running active."""
        from caseflow import pins
        from caseflow.portal import ensure_statistics
        from caseflow.search import ensure_all

        # Migration 0027 hashes plain PINs under this process's own key, also where the schema step runs
        # before build (a standby taking over: stand_by), never under another configuration's.
        pins.install(pins.PinKeys.from_config(self.config))
        self._bind()
        with database.connection_context():
            ran = create_schema(all_models()) if tables else []
            # The search structures before any call files a ticket (filed at once, they deadlocked on them).
            ensure_all()
            ensure_statistics()
        return ran

    def stand_by(self, leadership, stopping=None) -> bool:
        """Wait for the active lock as a standby; True once this process holds it, its schema is this
        version's and its parts are built, False when ``stopping`` was set first.

        The schema is changed only under the lock, never while another app is active on it (that app's
        version would meet tables it does not know, or a step half done). A standby whose version finds every
        table and step in the database builds its parts while it waits, so a takeover only starts them; one
        whose version brings schema changes waits unbuilt and, once active, migrates and then builds
        (docs/deploy.md, "Upgrade")."""
        from hotline.schema import pending

        self._bind()
        missing = pending()
        if missing:
            log.warning("standby: this version changes the database schema (%s); it changes it only once it "
                        "holds the active lock, and waits until then unbuilt", missing)
        else:
            self.build(schema=False)

        def prepare():
            # After the fence, before the term (core.leader): a long migration or build ends no term. A schema
            # complete at the start is only checked again (a takeover stays quick): a few queries, not the
            # hundreds of "create if missing" statements.
            ran = self.prepare_schema(tables=bool(missing or pending()))
            if ran:
                log.info("schema upgraded by the app taking over: %s", ", ".join(ran))
            if not self.parts:
                self.build(schema=False)
            self.seed()  # like the schema, only under the lock: a standby built while waiting wrote none
        return leadership.acquire(stopping, prepare=prepare)

    def _shared_files(self) -> None:
        """HOTLINE_SHARED_DIR (core.shared_files): check it (a bad one stops the start), write its marker,
        and copy the shipped prompts into its sounds folder where absent."""
        from core.config import PROJECT_ROOT
        from core.shared_files import check, database_identity, seed_sounds

        with database.connection_context():
            identity = database_identity(database.obj)
        for line in check(self.config, identity, create=True):
            log.info("shared storage: %s", line)
        copied = seed_sounds(PROJECT_ROOT / "sounds", self.config.sounds_dir)
        if copied:
            log.info("shared storage: %d shipped prompt file(s) copied to %s", copied, self.config.sounds_dir)

    def leadership(self, on_lost=None):
        """The active lock of an app pair (core.leader.Leadership) on PostgreSQL, or None: with SQLite one
        process runs alone, and HOTLINE_PAIR=off turns the lock off. run.py waits for it in ``stand_by``
        before ``start`` and ends the process when it is lost."""
        from core.db import is_postgres
        from core.leader import Leadership, PairSettings

        self._bind()
        settings = PairSettings.from_extra(self.config.extra)
        if not settings.enabled or not is_postgres():
            return None
        name = f"{settings.node} {self.config.outbound[0]}:{self.config.outbound[1]}"
        return Leadership(self.config.database_url, name, on_lost=on_lost,
                          check_interval=settings.check_interval, check_timeout=settings.check_timeout)

    def _call_handler(self, session) -> None:
        """One outbound-socket call: open a call record, run the IVR, close the record on the way out."""
        from ivr.runner import run_call

        cdr = self.parts["cdr"]
        call = dict(caller=session.caller, called=session.destination,
                    server=self.parts["pool"].name_for_call(session), ivr=True)
        try:
            with database.connection_context():
                cdr.call_started(session.uuid, **call)
        except Exception:  # noqa: BLE001 - the database away: the caller is served all the same
            # The record's draft is kept in memory and written whole when the call ends (or by the sweep),
            # also when the connection itself was refused before call_started ran.
            if session.uuid not in cdr.drafts:
                cdr.start_draft(session.uuid, **call)
            log.exception("call record of %s: its start was not stored; the call goes on", session.uuid)
        try:
            run_call(session, self.parts["ivr_services"], self.config, clock=self.clock)
        finally:
            if not session.hung_up:
                log.debug("IVR finished with call %s still up", session.uuid)
            try:
                with database.connection_context():
                    cdr.ivr_ended(session.uuid)
            except Exception:  # noqa: BLE001 - the call is over either way; the record keeps its last state
                log.exception("call record of %s: closing after the IVR failed", session.uuid)

    def _call_lost_in_setup(self, session, error) -> None:
        """A call the outbound server lost during set-up, after the switch named its channel (it stopped
        answering, the socket dropped, or the caller hung up in those first moments, which the app cannot
        tell apart): the IVR never had it, so no record would exist and nobody would call the citizen back.
        Its record is closed at once as cut off and the caller listed for a call-back (通话中断), as the sweep
        does for calls cut off later; a call already followed (back from an agent) keeps its record and is
        closed the same way."""
        cdr = self.parts["cdr"]
        with database.connection_context():
            if session.uuid not in cdr.drafts:
                cdr.call_started(session.uuid, caller=session.caller, called=session.destination,
                                 server=self.parts["pool"].name_for_call(session))
            record = cdr.cut_off(session.uuid)
        if record is not None:
            log.warning("call %s from %s lost during set-up (%s): record closed as %s", session.uuid,
                        session.caller or "?", error, record.disposition)

    def _http_status(self) -> dict | None:
        web = self.parts.get("web")
        return web.status() if web is not None else None

    def start(self) -> None:
        """Start the switch connections, the ACD, the socket server, the scheduler and the web server."""
        from core.fds import raise_open_file_limit
        from core.jobguard import GuardedScheduler
        from core.logsetup import add_file_sink, log_file
        from webui.server import HttpLimits, HttpServer

        # The log also goes to var/log/hotline.log (rotated), which the administrator's log page reads.
        add_file_sink(log_file(self.config))
        # Every call and web connection holds a descriptor: take all the kernel allows (logged).
        raise_open_file_limit()
        if not self.parts:
            self.build()
        pool, acd, cdr = self.parts["pool"], self.parts["acd"], self.parts["cdr"]
        # SQLite: the WAL checkpointed from a thread of its own, not inside a call's commit (issue 15 item 7).
        self.parts["wal_checkpointer"] = start_wal_checkpointer(database.obj)
        # SQLite: the ticket full-text index merged from a thread too, not inside ticket creations (same item).
        from caseflow.search_merging import start_fts_merger

        try:
            self.parts["fts_merger"] = start_fts_merger(database.obj)
        except peewee.PeeweeException:  # its settings not written (the file locked): the index merges inline
            log.exception("full-text merging thread not started: the index merges inside the creations")
            self.parts["fts_merger"] = None
        self.parts["bus"].start()
        self.parts["desk_feed"].start()
        for conn in pool.all():
            conn.subscribe(cdr.on_switch_event)
            conn.subscribe(self.parts["bridge_recorder"].on_switch_event)
            conn.subscribe(self.parts["recordings"].on_switch_event)
            conn.subscribe(self.parts["fax"].on_switch_event)
        with database.connection_context():
            if self.parts.get("seats") is not None:
                self.parts["seats"].ensure()
                try:
                    self.parts["seats"].publish()
                except Exception:
                    if not self.parts["seats"].subscribers_behind:
                        raise
                    # Kamailio's database away: the calls go on, the job below writes the table once it is back.
            acd.start(reconcile_now=False)
        if self.parts.get("kamailio") is not None:
            self.parts["kamailio"].start()
        # Connect only now: a switch answering while the ACD was still loading (its database reads yield) was
        # connected before the ACD's on-connect reconciliation was registered, and went unreconciled for the
        # 30 s of the periodic pass (a standby taking over recognised nothing for that long).
        pool.start()
        self.parts["outbound"].start()
        # Every job's failures logged there: a database outage once per job, not a traceback per run.
        scheduler = GuardedScheduler(timezone=self.config.tz)
        self.parts["case_jobs"].register_jobs(scheduler, self.clock)
        from recorder.jobs import register_jobs as register_recorder_jobs

        register_recorder_jobs(scheduler, fax=self.parts["fax"], store=self.parts["recordings"].store, pool=pool,
                               wrap=self._db_job)
        from ops.jobs import register_jobs as register_ops_jobs

        register_ops_jobs(scheduler, self.parts["checks"], settings=self.parts["backup_settings"], tz=self.config.tz,
                          wrap=self._db_job)
        from stats.analysis import retrain_request
        from stats.jobs import register_jobs as register_stats_jobs
        from stats.suggestions import TRAIN_TIMEOUT, model_path

        # Hotspot scan every few minutes; the dispatch suggestions retrained nightly (and once soon after the
        # start while there is no model yet): both in the analysis process, started first.
        self.parts["analysis"].start()
        register_stats_jobs(scheduler, self.parts["hotspots"],
                            retrain_request(self.parts["analysis_client"], TRAIN_TIMEOUT + 60), tz=self.config.tz,
                            train_soon=not model_path(self.config.var_dir).exists())
        from acd.supervisor import Supervisor
        from ivr.dialer import schedule_dialer

        # Outbound IVR campaigns (result notices, satisfaction call-backs, group calls) paced to free channels.
        self.parts["dialer"] = schedule_dialer(scheduler, pool, self.config)
        # Leaders on the phones for a day (领导上线接听) go off again when their day is over.
        scheduler.add_job(self._db_job(Supervisor(acd).expire_guests), "interval", minutes=10,
                          id="acd-expire-guests", max_instances=1, coalesce=True)
        seats = self.parts.get("seats")
        if seats is not None and seats.subscribers is not None:
            # Kamailio's credentials table written again after a failed write (acd.seats.catch_up).
            scheduler.add_job(self._db_job(seats.catch_up), "interval", minutes=1, id="seat-credentials-catch-up",
                              max_instances=1, coalesce=True)
        if self.parts.get("fts_merger") is not None:
            # SQLite's full-text merging thread watched: restarted (alarm) if it ended, its failures alarmed.
            scheduler.add_job(self._db_job(self.parts["fts_merger"].watch), "interval", minutes=1,
                              id="fts-merger-watch", max_instances=1, coalesce=True)
        from core import heap

        heap.register_job(scheduler)  # the freed heap back to the system once a minute (glibc keeps it)
        scheduler.start()
        self.parts["scheduler"] = scheduler
        host, port = self.config.http
        limits = HttpLimits.from_config(self.config)
        web = HttpServer((host, port), self.parts["web_app"], limits)
        web.start()
        self.parts["web"] = web
        log.info("web UI on http://%s:%s (at most %d connections, %d file descriptors kept for calls)", host,
                 web.server_port, limits.max_connections, limits.fd_reserve)
        self._start_sms(scheduler, f"http://{host}:{web.server_port}")
        import gevent

        self.parts["email"].start(scheduler, gevent.spawn)
        admission = self.parts["outbound"].admission
        if admission is not None:
            admission.lag.restart()  # the door judges the running app's loop, not its start
        log.info("outbound socket server on %s:%s (FreeSWITCH `socket` target)", *self.parts["outbound"].address)
        for endpoint in self.config.esl:
            log.info("ESL to FreeSWITCH %s (reconnecting until it answers)", endpoint.name)
        from switch import codec

        log.info("ESL wire codec: header blocks split by the %s", codec.implementation())

    def _start_sms(self, scheduler, app_url: str) -> None:
        """Kannel (or the development one) and the SMS round; a gateway that fails to start leaves the
        messages queued, it does not stop the hotline."""
        sms = self.parts["sms"]
        try:
            sms.start_gateway(app_url)
        except Exception:  # noqa: BLE001 - logged; messages wait in the outbox
            log.exception("SMS gateway did not start: messages stay queued")
        sms.register(scheduler)

    @staticmethod
    def _db_job(func):
        def run():
            with database.connection_context():
                func()
        run.__name__ = getattr(func, "__name__", "job")
        return run

    def stop(self, drain_timeout: float = 30.0) -> None:
        """Stop accepting calls, let calls in progress finish (up to drain_timeout), then stop the rest."""
        parts = self.parts
        if "outbound" in parts:
            parts["outbound"].stop(drain_timeout=drain_timeout)
        if "scheduler" in parts:
            parts["scheduler"].shutdown(wait=False)
        if parts.get("kamailio") is not None:
            parts["kamailio"].stop()
        if "acd" in parts:
            parts["acd"].stop()
        if "pool" in parts:
            parts["pool"].stop()
        if "cdr" in parts and not parts["cdr"].settle(timeout=10.0):
            log.warning("call records still being finalised at the stop: the next start's sweep closes them")
        if "web" in parts:
            parts["web"].stop(timeout=5)
        if "sms" in parts:
            parts["sms"].stop()
        if "email" in parts:
            parts["email"].stop()
        if "desk_feed" in parts:
            parts["desk_feed"].stop()
        if "bus" in parts:
            parts["bus"].stop()
        if "analysis" in parts:
            parts["analysis"].stop()
        if "alarms" in parts:
            from core import alarms as core_alarms

            core_alarms.disconnect(parts["alarms"].raise_alarm)
        try:
            if parts.get("fts_merger") is not None:
                parts.pop("fts_merger").stop()  # the index merges inline again
        finally:  # whatever that raised (the file locked): the WAL still checkpointed and left empty
            if parts.get("wal_checkpointer") is not None:
                parts.pop("wal_checkpointer").stop()  # a last TRUNCATE checkpoint: the WAL file left empty
        log.info("stopped")


def attach_recorder(cdr, *, acd=None, recordings=None, ivr_services=None, pool=None, spawn=None):
    """Connect the recorder to the IVR services (trace hook), the ACD (notices, queue rows) and the switch
    pool (record every bridged conversation). Returns the BridgeRecorder to subscribe to the pool, or None
    without recordings or a pool. The recorder's pieces (recorder.hooks) know neither the IVR nor the ACD."""
    from acd.call_records import AcdCallRecorder
    from recorder.hooks import BridgeRecorder, ivr_trace_hook

    if ivr_services is not None and hasattr(ivr_services, "on_trace"):
        ivr_services.on_trace.append(ivr_trace_hook(cdr))
    if acd is not None:
        adapter = AcdCallRecorder(acd, cdr)
        acd.subscribe(adapter.on_notice)
        cdr.enrichers.append(adapter.enrich)
    if recordings is None or pool is None:
        return None
    return BridgeRecorder(cdr, recordings, pool, spawn=spawn)
