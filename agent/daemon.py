"""``costagent daemon``: the jobs of ``agent.jobs`` on their cron schedules, with APScheduler.

- **Job store** in the state database (``apscheduler_jobs``, through the journal's engine), so the schedule
  and each job's next run time survive a restart. At start the scheduler comes up paused; each configured job
  is added, kept (same trigger: its stored next run time stands, so a run missed while the daemon was down
  happens once at start: ``coalesce``), rescheduled (the trigger changed) or removed ("off").
- **No overlap**: ``max_instances=1`` per job, and a lock per job that a recovery run shares.
- **Run ledger** (``agent.runs``): every run is claimed by (job, scheduled time) before it starts, so a second
  daemon on the same database or a repeated fire does nothing, and a run cut short (SIGTERM past the deadline,
  ``kill -9``) is run again at the next start with the same scheduled time, unless a newer run of that job
  is due at once anyway (then it is ``superseded``).
- **Failure isolation**: a job's exception fails that run (ledger, metrics, a log line with its traceback);
  the scheduler and the other jobs go on.
- **Shutdown** (SIGTERM/SIGINT): no new runs; the running ones get ``shutdown_timeout_seconds`` to finish;
  any still going is marked ``interrupted`` for the next start.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from apscheduler.events import EVENT_JOB_SUBMITTED, JobSubmissionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from agent import logs
from agent.clock import Clock, SystemClock
from agent.config import Config
from agent.daemon_config import JOBS as JOB_NAMES
from agent.deliveries import Deliveries
from agent.dispatch import Dispatcher
from agent.jobs import JOBS, JobContext, JobFailed
from agent.journal import Journal, safe_url
from agent.metrics import Metrics
from agent.runs import FAILED, HEARTBEAT, OK, SKIPPED, Run, RunLedger
from agent.schedules import describe, trigger
from providers.model import utc

log = logging.getLogger(__name__)
_CURRENT: Daemon | None = None  # the daemon whose scheduler calls ``fire`` (APScheduler stores a textual reference)


def fire(job: str) -> None:
    """The scheduled job's callable (``agent.daemon:fire`` in the job store)."""
    daemon = _CURRENT
    if daemon is None:  # pragma: no cover - only when a foreign scheduler loads our job store
        raise RuntimeError("no costagent daemon is running in this process")
    daemon._fired(job)


class Daemon:
    def __init__(self, config: Config, *, clock: Clock | None = None, env: Mapping[str, str] | None = None,
                 opener: Any = None, sender_opener: Any = None, workers: int = 4) -> None:
        self.config, self.clock = config, clock or SystemClock()
        self.env = os.environ if env is None else env
        self.journal = Journal(config.state_url, self.clock)
        self.ledger = RunLedger(self.journal.engine, self.clock)
        self.metrics = Metrics()
        self.dispatcher = Dispatcher(config.channels, config.report, Deliveries(self.journal.engine, self.clock),
                                     self.env, opener=sender_opener)
        self.stopping = threading.Event()
        self.context = JobContext(config, self.journal, self.ledger, self.clock, self.metrics, self.dispatcher,
                                  self.stopping, opener, self.await_collect)
        self.started_at: datetime | None = None
        self._locks = {job: threading.Lock() for job in JOB_NAMES}
        self._active: set[str] = set()
        self._active_lock = threading.Lock()
        self._submitted: dict[str, queue.SimpleQueue[datetime]] = {job: queue.SimpleQueue() for job in JOB_NAMES}
        self._heartbeat_stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self.scheduler = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(engine=self.journal.engine, tablename="apscheduler_jobs"),
                       "memory": MemoryJobStore()},
            executors={"default": ThreadPoolExecutor(workers)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone=config.daemon.timezone)
        self.scheduler.add_listener(self._on_submitted, EVENT_JOB_SUBMITTED)

    # -- one run --------------------------------------------------------------------------------------------------

    def run_job(self, job: str, scheduled_for: datetime) -> Run | None:
        """Run ``job`` for its ``scheduled_for`` time under the ledger; None when that run happened already (or
        a live process has it). Never raises for a job's failure: the run says ``failed``."""
        with self._locks[job]:
            claim = self.ledger.claim(job, utc(scheduled_for))
            if claim is None:
                log.info("event=run_skipped job=%s scheduled_for=%s reason=claimed", job, scheduled_for.isoformat())
                return None
            tokens = logs.run_id.set(claim.run_id), logs.job.set(job)
            with self._active_lock:
                self._active.add(job)
            started = time.monotonic()
            log.info("event=run_start job=%s scheduled_for=%s attempt=%d", job, claim.scheduled_for.isoformat(),
                     claim.attempt)
            try:
                detail = dict(JOBS[job](self.context, claim))
                status = detail.pop("status", OK)
            except JobFailed as exc:
                status, detail = FAILED, {**exc.detail, "error": str(exc)}
                log.error("event=run_failed job=%s %s", job, exc)
            except Exception as exc:  # a job's failure stays in that run
                one_line = getattr(exc, "one_line", None)
                message = one_line() if callable(one_line) else f"{type(exc).__name__}: {exc}"
                status, detail = FAILED, {"error": message.splitlines()[0] if message else type(exc).__name__}
                log.error("event=run_failed job=%s %s", job, detail["error"], exc_info=True)
            try:
                elapsed = time.monotonic() - started
                self.ledger.finish(claim.run_id, status, {**detail, "seconds": round(elapsed, 3)})
                if status in (OK, FAILED, SKIPPED):
                    self.metrics.runs.labels(job, status).inc()
                self.metrics.duration.labels(job).observe(elapsed)
                if status in (OK, SKIPPED):
                    self.metrics.last_success.labels(job).set(time.time())
                log.info("event=run_end job=%s status=%s seconds=%.3f%s", job, status, elapsed,
                         f" reason={detail['reason']!r}" if status == SKIPPED else "")
                return self.ledger.get(claim.run_id)
            finally:  # only now is the run over, for a shutdown waiting on it
                with self._active_lock:
                    self._active.discard(job)
                for token, var in zip(tokens, (logs.run_id, logs.job)):
                    var.reset(token)

    def run_once(self, jobs: Iterable[str], scheduled_for: datetime) -> list[Run | None]:
        """``costagent run``: each job once, in order, for ``scheduled_for`` (no waiting for a collect: one
        named before them has run already, and none runs beside them)."""
        waiting, self.context.await_collect = self.context.await_collect, lambda when: None
        try:
            return [self.run_job(job, scheduled_for) for job in jobs]
        finally:
            self.context.await_collect = waiting

    def await_collect(self, when: datetime, appear: float = 60.0, finish: float = 3600.0) -> None:
        """Wait for the collect scheduled for ``when`` to finish, when the collect schedule fires then too (at
        most ``appear`` s for it to start, ``finish`` s for it to end; not at all once stopping)."""
        expression = self.config.daemon.schedules.get("collect")
        if expression is None or not _fires_at(trigger(expression, self.config.daemon.timezone), utc(when)):
            return
        started = time.monotonic()
        while not self.stopping.is_set():
            run = self.ledger.find("collect", utc(when))
            waited = time.monotonic() - started
            if run is not None and run.status != "running":
                return
            if (run is None and waited > appear) or waited > finish:
                log.warning("event=collect_not_awaited scheduled_for=%s waited=%.0f", when.isoformat(), waited)
                return
            time.sleep(0.5)

    # -- the scheduler --------------------------------------------------------------------------------------------

    def _on_submitted(self, event: JobSubmissionEvent) -> None:
        if event.job_id in self._submitted:
            self._submitted[event.job_id].put(max(event.scheduled_run_times))

    def _fired(self, job: str) -> None:
        try:  # the scheduler announces the scheduled time right after submitting
            scheduled = self._submitted[job].get(timeout=30)
        except queue.Empty:  # pragma: no cover - the event always follows the submission
            scheduled = self.clock.now().replace(microsecond=0)
        self.run_job(job, scheduled)

    def _recover(self, job: str, scheduled_for: datetime) -> None:
        log.info("event=recover job=%s scheduled_for=%s", job, scheduled_for.isoformat())
        self.run_job(job, scheduled_for)

    def sync_jobs(self) -> dict[str, str]:
        """Make the job store match the configured schedules; what was done per job."""
        done = {}
        tz = self.config.daemon.timezone
        for job in JOB_NAMES:
            expression = self.config.daemon.schedules.get(job)
            stored = self.scheduler.get_job(job, jobstore="default")
            if expression is None:
                if stored is not None:
                    self.scheduler.remove_job(job, jobstore="default")
                done[job] = "off"
                continue
            wanted = trigger(expression, tz)
            if stored is None:
                self.scheduler.add_job(fire, wanted, args=[job], id=job, name=job, jobstore="default",
                                       replace_existing=True)
                done[job] = "added"
            elif describe(stored.trigger) != describe(wanted):
                self.scheduler.reschedule_job(job, jobstore="default", trigger=wanted)
                done[job] = "rescheduled"
            else:
                done[job] = "kept"
        return done

    def recover(self) -> list[str]:
        """Queue a run for every run cut short; what was queued or superseded."""
        out = []
        now = self.clock.now()
        for run in self.ledger.unfinished():
            if run.job not in JOBS:
                continue
            stored = self.scheduler.get_job(run.job, jobstore="default")
            due_now = stored is not None and stored.next_run_time is not None and utc(stored.next_run_time) <= now
            if due_now and utc(stored.next_run_time) > run.scheduled_for:
                self.ledger.supersede(run, utc(stored.next_run_time))
                out.append(f"{run.job}@{run.scheduled_for.isoformat()} superseded")
                continue
            self.scheduler.add_job(self._recover, "date", run_date=now, args=[run.job, run.scheduled_for],
                                   id=f"recover:{run.job}:{run.scheduled_for.isoformat()}", jobstore="memory",
                                   replace_existing=True)
            out.append(f"{run.job}@{run.scheduled_for.isoformat()} queued")
        return out

    def start(self) -> None:
        global _CURRENT
        _CURRENT = self
        self.scheduler.start(paused=True)
        synced = self.sync_jobs()
        recovered = self.recover()
        self.started_at = self.clock.now()
        self._heartbeat = threading.Thread(target=self._beat, name="costagent-heartbeat", daemon=True)
        self._heartbeat.start()
        self.scheduler.resume()  # runs missed while down fire now, once each (coalesced)
        log.info("event=daemon_start jobs=%s recovered=%d state=%s", ",".join(f"{k}:{v}" for k, v in synced.items()),
                 len(recovered), safe_url(self.journal.url))
        for item in recovered:
            log.info("event=recovery %s", item)

    def _beat(self) -> None:
        ticks = 0
        while not self._heartbeat_stop.wait(HEARTBEAT.total_seconds()):
            ticks += 1
            try:
                self.ledger.heartbeat()
                if ticks % 4 == 0 and not self.stopping.is_set():  # runs abandoned by a process elsewhere
                    for item in self.recover():
                        log.info("event=recovery %s", item)
            except Exception:  # noqa: BLE001 - the database may be briefly unreachable; the next beat retries
                log.warning("event=heartbeat_failed", exc_info=True)

    def shutdown(self, timeout: float | None = None) -> bool:
        """Stop taking runs, let the running ones finish within ``timeout``; True when none was cut short."""
        timeout = self.config.daemon.shutdown_timeout_seconds if timeout is None else timeout
        self.stopping.set()
        log.info("event=daemon_stopping running=%s timeout=%s", ",".join(sorted(self._active)) or "-", timeout)
        if self.scheduler.running:
            self.scheduler.pause()
        deadline = time.monotonic() + timeout
        while self.active and time.monotonic() < deadline:
            time.sleep(0.1)
        clean = not self.active
        if not clean:
            cut = self.ledger.interrupt_mine()
            log.warning("event=runs_interrupted runs=%s", ",".join(f"{r.job}@{r.scheduled_for.isoformat()}"
                                                                   for r in cut))
        self.stop_scheduler()
        self._heartbeat_stop.set()
        log.info("event=daemon_stopped clean=%s", clean)
        return clean

    def stop_scheduler(self) -> None:
        """Shut the scheduler down without letting it touch the job store again.

        APScheduler 3's loop can wake between ``shutdown`` marking it stopped and the thread ending: a job
        due at that moment is handed to the closed executor and its next run time moved on, so that run
        would be lost. The job store is detached first (its rows stay in the database for the next start)."""
        if not self.scheduler.running:
            return
        self.scheduler.pause()
        try:
            self.scheduler.remove_jobstore("default", shutdown=False)
        except KeyError:  # already detached
            pass
        self.scheduler.shutdown(wait=False)

    @property
    def active(self) -> set[str]:
        with self._active_lock:
            return set(self._active)

    # -- health -------------------------------------------------------------------------------------------------

    def health(self) -> tuple[bool, dict[str, Any]]:
        """(healthy, body) for /healthz: healthy while the scheduler runs and the state database answers."""
        jobs: dict[str, Any] = {}
        try:
            for job in JOB_NAMES:
                stored = self.scheduler.get_job(job, jobstore="default") if self.scheduler.running else None
                last = self.ledger.last(job, (OK, FAILED, SKIPPED))
                jobs[job] = {
                    "schedule": self.config.daemon.schedules.get(job) or "off",
                    "next_run": _iso(stored.next_run_time) if stored and stored.next_run_time else None,
                    "running": job in self.active,
                    "last": None if last is None else {"status": last.status,
                                                       "scheduled_for": _iso(last.scheduled_for),
                                                       "finished_at": _iso(last.finished_at)},
                }
            database = "ok"
        except Exception as exc:  # noqa: BLE001 - reported, not raised: a probe must answer
            database = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        running = self.scheduler.running and not self.stopping.is_set()
        status = "ok" if running and database == "ok" else "stopping" if self.stopping.is_set() else "unhealthy"
        return status == "ok", {"status": status, "database": database, "started_at": _iso(self.started_at),
                                "jobs": jobs}

    def close(self) -> None:
        global _CURRENT
        if _CURRENT is self:
            _CURRENT = None
        self.journal.close()


def _fires_at(t: Any, when: datetime) -> bool:
    """Whether trigger ``t`` has a fire time exactly at ``when`` (crontab triggers; an interval's depends on its
    start and practically never matches another job's)."""
    found = t.get_next_fire_time(None, when)
    return found is not None and utc(found) == when


def _iso(value: datetime | None) -> str | None:
    return None if value is None else utc(value).isoformat().replace("+00:00", "Z")


def scheduled_now(clock: Clock, key: str | None = None) -> datetime:
    """The scheduled time of a one-off run: ``key`` (ISO time) when given, else now to the minute."""
    if key:
        return utc(datetime.fromisoformat(key.replace("Z", "+00:00")))
    return clock.now().replace(second=0, microsecond=0)


__all__ = ["Daemon", "fire", "scheduled_now"]
