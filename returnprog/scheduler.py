"""The scheduler process: ``flask --app wsgi scheduler``.

APScheduler 3 (``BlockingScheduler``) in its own process — never inside web workers, where
every worker would run every job (DESIGN §7). Six jobs:

- **sweep** (every ``SCHEDULER_SWEEP_SECONDS``): write due reminders and alerts to the outbox
  (:func:`returnprog.services.reminders.sweep`). The first sweep after start looks back
  over the longest reminder offset, so after an outage the most recent due reminder of each
  series is sent — not a stale series.
- **delivery** (every ``SCHEDULER_DELIVERY_SECONDS``): send what is due from the outbox over
  SMTP with retries and back-off (:func:`returnprog.services.outbox.deliver_due`).
- **webhooks** (every ``SCHEDULER_DELIVERY_SECONDS``, like mail): emit ``signing_link.expired``
  for links whose expiry passed, then POST the due webhook deliveries from the same outbox,
  with the same leases and back-off (:mod:`returnprog.services.webhooks`).
- **checkpoint** (every ``AUDIT_CHECKPOINT_SECONDS``): seal the audit chain's head into the
  checkpoint file outside the database (:mod:`returnprog.anchor`).
- **records** (every ``RECORDS_JOB_SECONDS``): destroy the cases of approved destruction
  lists, write each finished list to the destruction register outside the database, and
  propose a new list of the cases whose action date has passed
  (:func:`returnprog.services.records.tick`).
- **queues** (every ``QUEUE_CACHE_SECONDS``): work out again the cached work queues of the
  cases changed since, or whose link expired or day ended
  (:func:`returnprog.services.queues.refresh_cache`), so the dashboard counts from the cache
  rather than judging each caseload on every look. A row the job has not reached yet is
  judged by the reader: the cache is never behind what the dashboard shows.

Only one scheduler is active at a time. On PostgreSQL it holds a session-level advisory
lock on a dedicated connection; on SQLite an exclusive ``fcntl.flock`` on a lock file next
to the database (``instance/returnprog.sqlite.scheduler-lock`` for the embedded default).
A second scheduler logs that it is waiting and takes over when the first one stops or dies
(the operating system releases the lock of a killed process; PostgreSQL that of a dropped
connection). A scheduler that loses its PostgreSQL connection stops its jobs and waits
for the lock again. SIGTERM or SIGINT lets the running job finish its current message,
hands unsent claims back, releases the lock and exits 0.

**Taking over.** Only the lock holder claims messages, so whatever is still claimed
(``sending``) when a scheduler takes the lock was left by a predecessor that died: the new
holder hands it all back to the queue (:func:`~returnprog.services.outbox.
release_orphaned_claims`) before its first delivery, instead of letting it wait out the
lease. With a file lock the predecessor is certainly dead (the kernel released its lock).
A PostgreSQL predecessor may only have lost its lock connection and still be finishing a
send: it notices within ``SCHEDULER_LOCK_POLL_SECONDS`` and stops before its next message,
so the successor waits that plus ``SMTP_TIMEOUT`` (35 s by default) before releasing. The
lease (``SCHEDULER_LEASE_SECONDS``) stays as the fallback for senders outside the scheduler.

**Heartbeat.** The active scheduler upserts the ``scheduler_heartbeat`` row when it takes
the lock and every ``SCHEDULER_HEARTBEAT_SECONDS``, and records each delivery run's latest
success and SMTP error there; ``/readyz`` and the staff dashboard read it
(:mod:`returnprog.services.health`).

Settings (``instance/config.py`` or ``RETURNPROG_*`` environment variables):

================================  =======  =================================================
key                               default  meaning
================================  =======  =================================================
SCHEDULER_SWEEP_SECONDS           300      how often the reminder sweep runs
SCHEDULER_DELIVERY_SECONDS        30       how often the outbox is delivered
SCHEDULER_LOCK_POLL_SECONDS       5        how often a waiting scheduler retries the lock
SCHEDULER_BATCH_SIZE              50       messages claimed per batch
SCHEDULER_LEASE_SECONDS           600      how long a claim lasts before a crash is assumed
                                           (fallback: a new scheduler releases at takeover)
SCHEDULER_HEARTBEAT_SECONDS       30       how often the active scheduler writes its heartbeat
SCHEDULER_EARLIEST_HOUR           0        no new reminders are written before this hour
SCHEDULER_TIMEZONE                Europe/Amsterdam   calendar of deadlines and hours
SMTP_TIMEOUT                      30       seconds before an SMTP server counts as unreachable
SMTP_MAX_ATTEMPTS                 10       attempts before a message is marked failed
SMTP_RETRY_BASE_SECONDS           60       first back-off; doubles per attempt …
SMTP_RETRY_MAX_SECONDS            3600     … up to this (the SMTP_* attempts and back-off
                                           apply to webhook deliveries too)
WEBHOOK_TIMEOUT                   10       seconds per webhook HTTP attempt
AUDIT_CHECKPOINT_SECONDS          600      how often the audit chain's head is sealed into
                                           the checkpoint file (AUDIT_CHECKPOINT_PATH)
RECORDS_JOB_SECONDS               3600     how often the records job runs (destruction of
                                           approved lists, a new list when cases are due)
QUEUE_CACHE_SECONDS               30       how often the work-queue cache is brought up to date
QUEUE_CACHE_BATCH                 2000     cases worked out per transaction of that job
RECORDS_REGISTER_DIR              instance/destruction-register   the register outside
                                           the database that a restore replays
================================  =======  =================================================
"""
from __future__ import annotations

import datetime as dt
import fcntl
import logging
import os
import signal
import socket
import threading
import time
import zlib
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url

from . import anchor
from . import reminders as plan
from .db import session_scope
from .services import health, outbox, signing_codes
from .services import webhooks
from .services import reminders as service

log = logging.getLogger("returnprog.scheduler")

DEFAULTS = {
    "SCHEDULER_SWEEP_SECONDS": 300,
    "SCHEDULER_DELIVERY_SECONDS": 30,
    "SCHEDULER_LOCK_POLL_SECONDS": 5,
    "SCHEDULER_BATCH_SIZE": 50,
    "SCHEDULER_HEARTBEAT_SECONDS": 30,
    "SCHEDULER_EARLIEST_HOUR": 0,
    "SCHEDULER_TIMEZONE": plan.DEFAULT_TIMEZONE,
    "AUDIT_CHECKPOINT_SECONDS": 600,
    "RECORDS_JOB_SECONDS": 3600,
    "QUEUE_CACHE_SECONDS": 30,
    "QUEUE_CACHE_BATCH": 2000,
}

# pg_advisory_lock key: a fixed 32-bit number derived from the name (per database).
ADVISORY_LOCK_KEY = zlib.crc32(b"returnprog.scheduler")


def setting(config, key: str):
    """A scheduler setting from the app config, else its default."""
    value = config.get(key)
    return DEFAULTS.get(key) if value is None else value


# --- the single-scheduler lock ------------------------------------------------------------------

class FileLock:
    """An exclusive ``flock`` on a file: released by the kernel when the process dies."""

    # The holder can lose this lock only by dying: a successor need not wait for it.
    survives_loss = False

    def __init__(self, path: Path):
        self.path = Path(path)
        self._fd: int | None = None

    def describe(self) -> str:
        return f"lock file {self.path}"

    def try_acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def holder(self) -> str:
        try:
            return self.path.read_text().strip() or "?"
        except OSError:
            return "?"

    def alive(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)


class PostgresLock:
    """A session-level advisory lock held on a dedicated connection: released by the
    server when the connection (or the process) dies."""

    # A holder whose lock connection dropped may still be running its current send.
    survives_loss = True

    def __init__(self, engine: Engine, key: int = ADVISORY_LOCK_KEY):
        self.engine = engine
        self.key = key
        self._conn = None

    def describe(self) -> str:
        return f"PostgreSQL advisory lock {self.key}"

    def try_acquire(self) -> bool:
        conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar()
        except Exception:
            conn.close()
            raise
        if not got:
            conn.close()
            return False
        self._conn = conn
        return True

    def holder(self) -> str:
        try:
            with self.engine.connect() as conn:
                pid = conn.execute(text(
                    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1 "
                    "AND objid::bigint = :k AND granted AND database = (SELECT oid FROM pg_database "
                    "WHERE datname = current_database())"), {"k": self.key}).scalar()
            return f"server pid {pid}" if pid else "?"
        except Exception:
            return "?"

    def alive(self) -> bool:
        if self._conn is None:
            return False
        try:
            self._conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
        except Exception:
            pass
        finally:
            try:
                conn.close()
            except Exception:
                pass


def register_dir(config, instance_path: str) -> Path:
    """Where the destruction register lives: ``RECORDS_REGISTER_DIR``, by default
    ``instance/destruction-register`` (keep it, like the audit checkpoints, where the
    database's backups are not: it is what re-applies destructions after a restore)."""
    return Path(config.get("RECORDS_REGISTER_DIR")
                or Path(instance_path) / "destruction-register")


def make_lock(engine: Engine, database_url: str, instance_path: str):
    """The lock that keeps a second scheduler on the same database waiting."""
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        return PostgresLock(engine)
    if url.database and url.database != ":memory:":
        return FileLock(Path(f"{url.database}.scheduler-lock"))
    return FileLock(Path(instance_path) / "scheduler.lock")


# --- the process ------------------------------------------------------------------------------------

class ReminderScheduler:
    """The jobs and their lifecycle; one instance per process."""

    def __init__(self, app):
        cfg = app.config
        self.engine: Engine = app.extensions["returnprog.engine"]
        self.policy = app.extensions["returnprog.policy"]
        self.smtp = outbox.SmtpSettings.from_config(cfg)
        self.retry = outbox.RetryPolicy.from_config(cfg)
        self.webhooks = webhooks.WebhookSettings.from_config(cfg)
        self.sweep_seconds = float(setting(cfg, "SCHEDULER_SWEEP_SECONDS"))
        self.delivery_seconds = float(setting(cfg, "SCHEDULER_DELIVERY_SECONDS"))
        self.poll_seconds = float(setting(cfg, "SCHEDULER_LOCK_POLL_SECONDS"))
        self.batch_size = int(setting(cfg, "SCHEDULER_BATCH_SIZE"))
        self.heartbeat_seconds = float(setting(cfg, "SCHEDULER_HEARTBEAT_SECONDS"))
        self.holder = f"{socket.gethostname()}:{os.getpid()}"
        self._last_beat = 0.0
        self.earliest_hour = int(setting(cfg, "SCHEDULER_EARLIEST_HOUR"))
        self.tz = str(setting(cfg, "SCHEDULER_TIMEZONE"))
        self.checkpoint_seconds = float(setting(cfg, "AUDIT_CHECKPOINT_SECONDS"))
        self.records_seconds = float(setting(cfg, "RECORDS_JOB_SECONDS"))
        self.queue_seconds = float(setting(cfg, "QUEUE_CACHE_SECONDS"))
        self.queue_batch = int(setting(cfg, "QUEUE_CACHE_BATCH"))
        self.config, self.instance_path = cfg, app.instance_path
        self.lock = make_lock(self.engine, cfg["DATABASE_URL"], app.instance_path)
        self.stop = threading.Event()
        self.lock_lost = threading.Event()
        self.last_swept: dt.date | None = None
        self._scheduler = None

    # jobs ----------------------------------------------------------------------------
    def sweep_job(self) -> service.SweepReport | None:
        """Write due reminders to the outbox."""
        if self.stop.is_set() or not self._holding():
            return None
        now = service._utcnow()
        local = plan._localise(now, self.tz)
        if local.hour < self.earliest_hour:
            return None
        try:
            with session_scope(self.engine) as session:
                report = service.sweep(session, self.policy, local.date(), now=now,
                                       last_swept=self.last_swept, tz=self.tz)
        except Exception:
            log.exception("sweep failed; it runs again at the next interval")
            return None
        self.last_swept = local.date()
        log.info("%s", report)
        return report

    def delivery_job(self) -> outbox.DeliveryReport | None:
        """Send what is due from the outbox."""
        if self.stop.is_set() or not self._holding():
            return None
        try:
            with session_scope(self.engine) as session:
                report = outbox.deliver_due(
                    session, outbox.SmtpMailer(self.smtp), self.smtp, self.retry,
                    batch_size=self.batch_size, stop=self.stop,
                    today=plan._localise(service._utcnow(), self.tz).date(),
                    holding=lambda: not self.lock_lost.is_set(),
                    reveal=signing_codes.revealer(self.config.get("SECRET_KEY")))
        except Exception:
            log.exception("delivery failed; it runs again at the next interval")
            return None
        if report.last_sent_at or report.last_error_at:
            try:
                with session_scope(self.engine) as session:
                    health.record_delivery(session, sent_at=report.last_sent_at,
                                           error=report.errors[-1] if report.errors else None,
                                           error_at=report.last_error_at)
            except Exception:
                log.exception("could not record the delivery outcome for the dashboard")
        if report.claimed or report.cancelled:
            log.info("%s", report)
        for error in dict.fromkeys(report.errors):
            log.warning("delivery problem: %s", error)
        return report

    def webhook_job(self) -> outbox.DeliveryReport | None:
        """Emit the expired-link events, then POST the due webhook deliveries."""
        if self.stop.is_set() or not self._holding():
            return None
        try:
            with session_scope(self.engine) as session:
                expired = webhooks.sweep_expired_links(session, service._utcnow())
                report = webhooks.deliver_due(
                    session, webhooks.HttpSender(self.webhooks.timeout), self.retry,
                    self.webhooks, secret_key=self.config.get("SECRET_KEY"),
                    batch_size=self.batch_size, stop=self.stop,
                    holding=lambda: not self.lock_lost.is_set())
        except Exception:
            log.exception("webhook delivery failed; it runs again at the next interval")
            return None
        if expired or report.claimed or report.cancelled:
            log.info("webhooks: %d expired link(s); %s", expired, report)
        for error in dict.fromkeys(report.errors):
            log.warning("webhook problem: %s", error)
        return report

    def checkpoint_job(self):
        """Seal the audit chain's head into the checkpoint file outside the database."""
        if self.stop.is_set() or not self._holding():
            return None
        try:
            with session_scope(self.engine) as session:
                made = anchor.checkpoint(session, self.config, self.instance_path,
                                         service._utcnow())
        except Exception:
            log.exception("audit checkpoint failed; it is tried again at the next interval")
            return None
        if made is not None:
            log.info("audit checkpoint: event %s", made.seq)
        return made

    def _watch(self) -> None:
        """Periodic check: a stop request that raced the start, or a lost lock; and the
        heartbeat when it is due."""
        if self.stop.is_set():
            self._shutdown_async()
        elif self._holding() and time.monotonic() - self._last_beat >= self.heartbeat_seconds:
            self._beat()

    def _beat(self, started: bool = False) -> None:
        try:
            with session_scope(self.engine) as session:
                health.beat(session, self.holder, service._utcnow(), started=started)
            self._last_beat = time.monotonic()
        except Exception as exc:  # readiness will show the stale heartbeat
            log.warning("could not write the heartbeat: %s", exc)

    def take_over(self) -> None:
        """Just after taking the lock: heartbeat, then hand back the claims a dead
        predecessor left (after a grace period when it may only have lost its lock)."""
        self._beat(started=True)
        try:
            with session_scope(self.engine) as session:
                if not outbox.claimed_count(session):
                    return  # a clean hand-over: nothing to release, no reason to wait
        except Exception:
            pass  # the release below reports the problem
        if self.lock.survives_loss:
            grace = self.poll_seconds + self.smtp.timeout
            log.info("releasing claims left by a previous scheduler in %.0f s", grace)
            if self.stop.wait(grace) or not self.lock.alive():
                return
        try:
            with session_scope(self.engine) as session:
                released = outbox.release_orphaned_claims(session, service._utcnow())
        except Exception:
            log.exception("could not release claims left by a previous scheduler; "
                          "they are retried when their lease ends")
            return
        if released:
            log.info("released %d message(s) claimed by a previous scheduler", released)

    def _holding(self) -> bool:
        if self.lock.alive():
            return True
        if not self.lock_lost.is_set():
            log.error("lost the scheduler lock (database connection gone); stopping jobs")
            self.lock_lost.set()
            self._shutdown_async()
        return False

    # lifecycle ------------------------------------------------------------------------
    def request_stop(self, signum=None, _frame=None) -> None:
        """Signal handler: finish the current message, then stop."""
        if not self.stop.is_set():
            log.info("received %s; stopping after the current message",
                     signal.Signals(signum).name if signum else "stop request")
        self.stop.set()
        self._shutdown_async()

    def _shutdown_async(self) -> None:
        sched = self._scheduler
        if sched is not None:
            threading.Thread(target=self._shutdown, args=(sched,), daemon=True).start()

    @staticmethod
    def _shutdown(sched) -> None:
        try:
            sched.shutdown(wait=True)
        except Exception:  # already stopped
            pass

    def wait_for_lock(self) -> bool:
        """Block until this process holds the lock (True) or is asked to stop (False)."""
        announced = False
        while not self.stop.is_set():
            try:
                if self.lock.try_acquire():
                    log.info("scheduler lock acquired (%s); pid %d is the active scheduler",
                             self.lock.describe(), os.getpid())
                    return True
            except Exception as exc:  # e.g. the database is not reachable yet
                log.warning("cannot take the scheduler lock yet: %s", exc)
                self.stop.wait(self.poll_seconds)
                continue
            if not announced:
                log.info("another scheduler is active (%s, holder %s); waiting for it to "
                         "stop — checking every %ss", self.lock.describe(), self.lock.holder(),
                         self.poll_seconds)
                announced = True
            self.stop.wait(self.poll_seconds)
        return False

    def records_job(self) -> dict | None:
        """Destroy what approved destruction lists hold and propose the next list."""
        if self.stop.is_set() or not self._holding():
            return None
        from .services import Context
        from .services import records

        try:
            with session_scope(self.engine) as session:
                ctx = Context(session=session, policy=self.policy, actor=None, channel="job",
                              today=lambda: plan._localise(service._utcnow(), self.tz).date())
                report = records.tick(ctx, register_dir(self.config, self.instance_path))
        except Exception:
            log.exception("records job failed; it runs again at the next interval")
            return None
        if report["destroyed_lists"] or report["proposed"]:
            log.info("records: %s", report)
        return report

    def queues_job(self) -> int:
        """Bring the work-queue cache up to date, a batch at a time; rows written."""
        if self.stop.is_set() or not self._holding():
            return 0
        from .services import Context
        from .services import queues

        written = 0
        try:
            with session_scope(self.engine) as session:
                ctx = Context(session=session, policy=self.policy, actor=None, channel="job",
                              today=lambda: plan._localise(service._utcnow(), self.tz).date())
                written = queues.refresh_cache_fully(ctx, self.queue_batch,
                                                     stop=self.stop.is_set)
        except Exception:
            log.exception("queues job failed; it runs again at the next interval")
        return written

    def run_once(self) -> int:
        """Take the lock, sweep once, deliver until nothing is due, run the other jobs once
        (the queue cache last), release; exit code."""
        if not self.wait_for_lock():
            return 0
        try:
            self.take_over()
            self.sweep_job()
            self.delivery_job()
            self.webhook_job()
            self.checkpoint_job()
            self.records_job()
            # Last: it judges what the jobs above changed, and the dashboard counts from it.
            self.queues_job()
        finally:
            self.lock.release()
        return 0

    def run(self) -> int:
        """Run until SIGTERM/SIGINT: wait for the lock, then the jobs at their intervals."""
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.blocking import BlockingScheduler

        while not self.stop.is_set():
            if not self.wait_for_lock():
                break
            self.lock_lost.clear()
            self.last_swept = None  # after any gap, the first sweep catches up
            self.take_over()
            if self.stop.is_set() or not self._holding():
                self.lock.release()
                continue
            # A thread per job: the watch (lost lock, heartbeat) must not queue behind a
            # long sweep and delivery.
            sched = BlockingScheduler(
                executors={"default": ThreadPoolExecutor(4)},
                job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
                timezone=_zone(self.tz))
            start = dt.datetime.now(dt.timezone.utc)
            sched.add_job(self.sweep_job, "interval", seconds=self.sweep_seconds, id="sweep",
                          next_run_time=start)
            sched.add_job(self.delivery_job, "interval", seconds=self.delivery_seconds,
                          id="delivery", next_run_time=start + dt.timedelta(milliseconds=50))
            sched.add_job(self.webhook_job, "interval", seconds=self.delivery_seconds,
                          id="webhooks", next_run_time=start + dt.timedelta(milliseconds=100))
            sched.add_job(self.checkpoint_job, "interval", seconds=self.checkpoint_seconds,
                          id="checkpoint", next_run_time=start + dt.timedelta(seconds=1))
            sched.add_job(self.records_job, "interval", seconds=self.records_seconds,
                          id="records", next_run_time=start + dt.timedelta(seconds=2))
            sched.add_job(self.queues_job, "interval", seconds=self.queue_seconds,
                          id="queues", next_run_time=start + dt.timedelta(seconds=3))
            sched.add_job(self._watch, "interval", seconds=self.poll_seconds, id="watch")
            self._scheduler = sched
            log.info("scheduler running: sweep every %ss, delivery every %ss, SMTP %s:%s",
                     self.sweep_seconds, self.delivery_seconds, self.smtp.host, self.smtp.port)
            try:
                if not self.stop.is_set():
                    sched.start()
            finally:
                self._scheduler = None
                self.lock.release()
            if self.lock_lost.is_set() and not self.stop.is_set():
                time.sleep(self.poll_seconds)
        log.info("scheduler stopped")
        return 0


def _zone(name: str):
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo(name)
    except Exception:
        return dt.timezone.utc


def run_scheduler(app, once: bool) -> None:
    """``flask scheduler [--once]`` (:mod:`returnprog.cli`): run the jobs until stopped
    (SIGTERM, SIGINT), or one round of each with ``once``; exits with the runner's code."""
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s scheduler[%(process)d] %(levelname)s %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    runner = ReminderScheduler(app)
    signal.signal(signal.SIGTERM, runner.request_stop)
    signal.signal(signal.SIGINT, runner.request_stop)
    code = runner.run_once() if once else runner.run()
    raise SystemExit(code)
