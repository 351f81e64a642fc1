"""The worker: a loop that fires due timers, resumes runnable instances and retries failed
steps when their backoff is over, and survives its database.

:class:`Worker` claims work through the engine (:mod:`gorch.engine._claims`) and does each item
in turn; a turn that fails is logged and followed by a backoff, never by the end of the loop.
:class:`WorkerHealth` is what it reports about itself, for health checks.
"""

from __future__ import annotations

import functools
import logging
import random
import signal
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from types import FrameType
from typing import Any

from attrs import define

from gorch import clock
from gorch.engine._claims import (
    claim_messages,
    claim_runnable,
    claim_timers,
    deliver_claimed,
    fire_claimed,
    run_claimed,
)
from gorch.engine._engine import Engine
from gorch.errors import ConflictError, StoreUnavailableError
from gorch.store.base import InstanceRecord

log = logging.getLogger("gorch.engine")


@define(frozen=True, slots=True)
class WorkerHealth:
    """What a :class:`Worker` is doing, for health checks (``GET /health``).

    Attributes:
        running: :meth:`Worker.run` is looping (False before it starts and once it ended).
        last_turn: when its loop last moved on (claimed work, finished an item, or waited a
            slice of its idle or backoff time), or None before it ran.
        failures: consecutive turns that failed (a store error, a bug); 0 after a good turn.
        last_error: the last failure, as ``"ErrorClass: message"``, or None.
        item: the item in hand, as ``"<instance id> (run)"`` or ``"<instance id> (timer)"``,
            or None.
        item_seconds: how long the item in hand has been running, or None.
        stalled: the item in hand has been running, or the loop has not moved on, for more
            than 3x the engine's lease: by then another worker may have taken the instance
            over (its lease expired), and a step or the database hangs. A long step within
            that bound is not a stall.
        problem: why the worker is unhealthy (not running, stalled, or its last
            :attr:`Worker.FAILING` turns failed), or None if it is healthy.
    """

    running: bool
    last_turn: datetime | None
    failures: int
    last_error: str | None
    item: str | None
    item_seconds: float | None
    stalled: bool
    problem: str | None

    @property
    def healthy(self) -> bool:
        return self.problem is None


class Worker:
    """Fires due timers, resumes runnable instances and retries failed steps.

    Any number of workers, in any number of processes and machines, can share one store: each
    item is claimed with a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so none is done
    twice at once. A worker claims only instances of its engine's workflows.

    :meth:`run` survives its database: a turn that fails (the store cannot be reached, a bug)
    is logged, and the worker backs off (``min_backoff`` seconds, doubling up to
    ``max_backoff``, with jitter; back to the start after a good turn) and goes on, with new
    connections, until :meth:`stop` or SIGTERM. :meth:`health` says how it is doing.

    Args:
        engine: the engine whose store and workflows to work on.
        batch: how many items one claim takes.
        poll: seconds an idle worker waits before looking again (PostgreSQL wakes it earlier
            with LISTEN/NOTIFY when work is committed). A schedule's tick starts within
            ``poll`` of its time (nothing announces it), so keep it at 1 s or so.
        min_backoff, max_backoff: the first and the longest wait after a failed turn.
    """

    FAILING = 3
    """Consecutive failed turns after which :meth:`health` calls the worker unhealthy."""

    def __init__(
        self,
        engine: Engine,
        *,
        batch: int = 16,
        poll: float = 1.0,
        min_backoff: float = 0.1,
        max_backoff: float = 30.0,
    ) -> None:
        if not 0 < min_backoff <= max_backoff:
            raise ValueError(
                f"backoff: need 0 < min_backoff <= max_backoff, not {min_backoff!r} and "
                f"{max_backoff!r}"
            )
        self.engine = engine
        self.batch = batch
        self.poll = poll
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self._stop = threading.Event()
        self._rng = random.Random()
        # What health() reads (each a single attribute, replaced whole: no lock needed).
        self._running = False
        self._beat: tuple[float, datetime] | None = None  # (monotonic, wall clock)
        self._failures = 0
        self._last_error: str | None = None
        self._ended: str | None = None  # what ended run(), if not stop()
        self._item: tuple[str, float] | None = None  # (what, monotonic start)
        # Claimed rows a failed turn did not finish: given back once the store answers.
        self._orphans: list[InstanceRecord] = []

    def stop(self) -> None:
        """Ask :meth:`run` to return once the item in hand is done."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # -- health ------------------------------------------------------------------------------

    def health(self) -> WorkerHealth:
        """How the worker is doing (cheap; safe to call from any thread)."""
        now = time.monotonic()
        limit = 3 * self.engine.lease.total_seconds()
        beat, item, failures = self._beat, self._item, self._failures
        running, error = self._running, self._last_error
        seconds = None if item is None else now - item[1]
        idle = None if beat is None else now - beat[0]
        problem = None
        stalled = False
        if not running:
            ended = self._ended
            problem = "the worker is not running" + (f" (it ended with {ended})" if ended else "")
        elif item is not None and seconds is not None and seconds > limit:
            stalled = True
            problem = (
                f"the worker is stalled: the item in hand, instance {item[0]}, has been running "
                f"for {seconds:.1f} s, more than 3x the engine's lease ({limit / 3:g} s)"
            )
        elif item is None and idle is not None and idle > limit:
            stalled = True
            problem = (
                f"the worker is stalled: its loop has not moved on for {idle:.1f} s, more than "
                f"3x the engine's lease ({limit / 3:g} s)"
            )
        elif failures >= self.FAILING:
            problem = f"the worker's last {failures} turns failed; the last with {error}"
        return WorkerHealth(
            running=running,
            last_turn=None if beat is None else beat[1],
            failures=failures,
            last_error=error,
            item=None if item is None else item[0],
            item_seconds=seconds,
            stalled=stalled,
            problem=problem,
        )

    def _moved_on(self) -> None:
        self._beat = (time.monotonic(), clock.now())

    # -- work --------------------------------------------------------------------------------

    def run_once(self) -> int:
        """Do everything due now: start the due ticks of schedules, fire due timers, deliver the
        ends of children and the moves of watched instances, run runnable instances and due
        retries, until nothing is left (or :meth:`stop` was called). Returns how many items it
        did.

        Raises:
            StoreUnavailableError: the store cannot be reached (the rows claimed and not done
                are given back by the next call, or their leases expire).
        """
        self._give_back_orphans()
        done = 0
        while not self._stop.is_set():
            n = self._fire_schedules() + self._fire_timers() + self._deliver_messages()
            n += self._run_runnable()
            if n == 0:
                break
            done += n
        return done

    def _fire_schedules(self) -> int:
        """Start the due ticks of the schedules (:meth:`Engine.fire_schedules`); how many.
        A store that cannot be reached fails the turn as every claim does; any other error
        is logged, and the timers and runs of the turn go on."""
        try:
            started = len(self.engine.fire_schedules())
        except StoreUnavailableError:
            raise
        except Exception:
            log.exception("worker %s: firing the schedules failed", self.engine.owner)
            started = 0
        self._moved_on()
        return started

    def _fire_timers(self) -> int:
        eng = self.engine
        started = time.perf_counter()
        claimed = claim_timers(eng, self.batch)
        eng._each("on_claim", "timer", len(claimed), time.perf_counter() - started)
        work = [functools.partial(fire_claimed, eng, timer, row) for timer, row in claimed]
        return self._work_through([row for _, row in claimed], work, "timer")

    def _deliver_messages(self) -> int:
        eng = self.engine
        started = time.perf_counter()
        claimed = claim_messages(eng, self.batch)
        eng._each("on_claim", "message", len(claimed), time.perf_counter() - started)
        work = [functools.partial(deliver_claimed, eng, m, row) for m, row in claimed]
        return self._work_through([row for _, row in claimed], work, "message")

    def _run_runnable(self) -> int:
        eng = self.engine
        started = time.perf_counter()
        claimed = claim_runnable(eng, self.batch)
        eng._each("on_claim", "run", len(claimed), time.perf_counter() - started)
        work = [functools.partial(run_claimed, eng, row) for row in claimed]
        return self._work_through(claimed, work, "run")

    def _work_through(
        self, claimed: list[InstanceRecord], work: Sequence[Callable[[], object]], what: str
    ) -> int:
        """Do each claimed item in turn; on :meth:`stop`, give back the ones not begun.
        Returns how many were done."""
        self._moved_on()
        for i, item in enumerate(work):
            if self._stop.is_set():
                self._release(claimed[i:])
                return i
            self._guard(item, claimed, i, what)
        return len(claimed)

    def _release(self, rows: Iterable[InstanceRecord]) -> None:
        for row in rows:
            if row.lease_owner:
                self.engine.store.release(row.id, row.lease_owner, row.version)

    def _give_back_orphans(self) -> None:
        """Release what a failed turn claimed and did not finish (a release names the version
        claimed, so one whose work was committed meanwhile is left alone)."""
        while self._orphans:
            self._release(self._orphans[-1:])
            self._orphans.pop()

    def _guard(
        self, work: Callable[[], object], claimed: list[InstanceRecord], i: int, what: str
    ) -> None:
        row = claimed[i]
        started = time.perf_counter()
        self._item = (f"{row.id} ({what})", time.monotonic())
        try:
            work()
        except ConflictError:
            pass  # lost the lease to another worker; it carries on
        except StoreUnavailableError:
            # The store is gone: so is the rest of this batch. Give the rows back once it
            # answers again (or their leases expire).
            self._orphans.extend(r for r in claimed[i:] if r.lease_owner)
            raise
        except Exception:
            # The instance stays as last committed; its lease expires and it is tried again.
            log.exception("%s: %s failed", row.id, what, extra={"gorch_instance": row.id})
        finally:
            self._item = None
            self._moved_on()
        log.debug(
            "%s: %s in %.1f ms", row.id, what, (time.perf_counter() - started) * 1000,
            extra={"gorch_instance": row.id, "gorch_work": what},
        )  # fmt: skip

    def _idle(self) -> None:
        """Wait up to ``poll`` seconds for new work, in short slices so that stop() is quick."""
        left = self.poll
        started = time.perf_counter()
        try:
            while left > 0 and not self._stop.is_set():
                slice_ = min(left, 0.2)
                woken = self.engine.store.wait_for_work(slice_)
                self._moved_on()
                if woken:
                    return
                left -= slice_
        finally:
            self.engine._each("on_idle", time.perf_counter() - started)

    def _back_off(self) -> None:
        """Sleep after a failed turn: exponential, capped, with jitter (so that workers that
        failed together do not all come back at once), in slices so that stop() is quick."""
        left = self._backoff_limit() * self._rng.uniform(0.5, 1.0)
        while left > 0 and not self._stop.is_set():
            # time.sleep, not Event.wait: a signal handler that sets the event while this
            # (main) thread holds the event's lock would deadlock.
            step = min(left, 0.1)
            time.sleep(step)
            left -= step
            self._moved_on()

    def _backoff_limit(self) -> float:
        """The longest wait after the failed turns so far: doubling, capped."""
        doubled: float = self.min_backoff * 2 ** min(self._failures - 1, 60)
        return min(self.max_backoff, doubled)

    def _worked(self) -> None:
        """A turn's work went through: the store answers again."""
        if self._failures:
            log.info(
                "worker %s: working again after %d failed turns", self.engine.owner, self._failures
            )
            self._failures = 0

    def _failed(self, exc: Exception) -> None:
        self._failures += 1
        self._last_error = f"{type(exc).__name__}: {exc}"
        wait = self._backoff_limit()
        if isinstance(exc, StoreUnavailableError):
            log.warning(
                "worker %s: turn %d in a row failed, retrying within %.1f s: %s",
                self.engine.owner, self._failures, wait, exc,
            )  # fmt: skip
        else:
            log.exception(
                "worker %s: turn %d in a row failed (a bug), retrying within %.1f s",
                self.engine.owner, self._failures, wait,
            )  # fmt: skip

    def run(self, *, handle_signals: bool = True) -> None:
        """Work until :meth:`stop` is called or SIGTERM/SIGINT arrives (the item in hand is
        finished first). Signal handlers are installed only in the main thread.

        Nothing that happens in one turn ends this: a failed turn is logged and retried after
        a backoff. Only :meth:`stop`, a signal, or an exception that is not an ``Exception``
        (``SystemExit``, ``KeyboardInterrupt``) does."""
        restore: list[tuple[int, Any]] = []
        if handle_signals and threading.current_thread() is threading.main_thread():

            def on_signal(signum: int, _: FrameType | None) -> None:
                log.info(
                    "worker: %s received, finishing the item in hand", signal.Signals(signum).name
                )
                self._stop.set()

            restore = [(s, signal.signal(s, on_signal)) for s in (signal.SIGTERM, signal.SIGINT)]
        log.info("worker %s started", self.engine.owner)
        self._running, self._ended = True, None
        self._moved_on()
        try:
            while not self._stop.is_set():
                try:
                    # Listen before looking (PostgreSQL: LISTEN once, and again after a
                    # failure), so that work committed after the claims below wakes _idle.
                    self.engine.store.wait_for_work(0)
                    done = self.run_once()
                    self._worked()
                    if done == 0:
                        self._idle()
                except Exception as exc:
                    self._failed(exc)
                    self._back_off()
        except BaseException as exc:
            self._ended = self._last_error = f"{type(exc).__name__}: {exc}"
            log.critical("worker %s ended by %s", self.engine.owner, self._ended)
            raise
        finally:
            self._running = False
            for sig, old in restore:
                signal.signal(sig, old)
            log.info("worker %s stopped", self.engine.owner)
