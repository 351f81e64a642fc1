"""Interpreter benchmarks (issue 2): ``python -m bench.interpreter``.

Prints medians over repeated runs:

1. gorchestrate's own benchmark scenario (its ``TestLoopWorkflow``): µs per whole run
   (resume, event, resume, event, resume) and µs per step, against the 95 µs target.
2. The same run with ``gorch.dumps``/``gorch.loads`` of state and data around every call (the
   request-handler pattern): the added cost per load+save, against the 15 µs target.
3. Scaling: sequential definitions of 10, 100 and 1,000 steps, per-step cost and its ratio.
4. A 10,000-iteration loop with a wait in it: the serialized state's size along the way.

Medians, not means: these machines are shared and noisy. ``--quick`` runs fewer rounds.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gorch import (
    CallbackRequest,
    For,
    On,
    S,
    State,
    Step,
    Wait,
    dumps,
    handle_callback,
    loads,
    new_state,
    resume,
)
from gorch.state import CallbackRequest as _Req

EVENT = CallbackRequest(name="event")


class DumbHandler:
    """gorchestrate's test handler: setup returns data, teardown checks it, handle calls f."""

    type = "dumb"

    def __init__(self, f: Callable[[], None] | None = None) -> None:
        self.f = f

    def setup(self, req: _Req) -> str:
        return '{"a":"b"}'

    def handle(self, req: _Req, input: Any) -> object:
        if self.f is not None:
            self.f()
        return input

    def teardown(self, req: _Req, handled: bool) -> None:
        if req.setup_data != '{"a":"b"}':
            raise RuntimeError("setup or teardown issue")


@dataclass
class LoopWorkflow:
    """gorchestrate's TestLoopWorkflow, statement for statement."""

    i: int = 0
    log: str = ""

    def definition(self) -> Any:
        return S(
            For("loop 1", self.i < 5, Step("step1", self.step1)),
            Step("reset i", self.reset),
            For(
                "loop 2",
                self.i < 2,
                Wait(
                    "wait in loop for event",
                    On("event", DumbHandler(self.on_event), Step("step2", self.step2)),
                ),
            ),
        )

    def step1(self) -> None:
        self.i += 1
        self.log += "l"

    def reset(self) -> None:
        self.i = 0

    def on_event(self) -> None:
        self.log += "h"
        self.i += 1

    def step2(self) -> None:
        self.log += "a"


def run_loop_workflow() -> None:
    wf = LoopWorkflow()
    state = new_state("1", "loop")
    resume(wf, state)
    handle_callback(EVENT, wf, state)
    resume(wf, state)
    handle_callback(EVENT, wf, state)
    resume(wf, state)
    assert wf.log == "lllllhaha", wf.log


def run_loop_workflow_json() -> None:
    """The same run, loading state and data from JSON before and saving after every call."""
    wf = LoopWorkflow()
    state_text, data_text = dumps(new_state("1", "loop")), dumps(wf)
    for call in range(5):
        state = loads(state_text, State)
        wf = loads(data_text, LoopWorkflow)
        if call % 2:
            handle_callback(EVENT, wf, state)
        else:
            resume(wf, state)
        state_text, data_text = dumps(state), dumps(wf)
    assert wf.log == "lllllhaha", wf.log


def load_save_only(state_text: str, data_text: str) -> None:
    for _ in range(5):
        state = loads(state_text, State)
        wf = loads(data_text, LoopWorkflow)
        dumps(state), dumps(wf)


def median_us(fn: Callable[[], object], rounds: int, inner: int) -> float:
    """Median over ``rounds`` of the mean time of ``inner`` calls, in µs."""
    fn()  # warm caches (compiled programs, converter hooks)
    samples = []
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for _ in range(rounds):
            t0 = time.perf_counter_ns()
            for _ in range(inner):
                fn()
            samples.append((time.perf_counter_ns() - t0) / inner / 1000)
    finally:
        if gc_was:
            gc.enable()
    return statistics.median(samples)


def sequential_class(n: int) -> type:
    """A workflow class whose definition is ``n`` steps in a row."""

    def definition(self: Any) -> Any:
        return S(*[Step(f"step {k}", self.work) for k in range(n)])

    def work(self: Any) -> None:
        self.done += 1

    return type(f"Seq{n}", (), {"definition": definition, "work": work, "done": 0})


@dataclass
class LongLoop:
    """A loop with a wait in every turn, for the state-size check."""

    turns: int = 0

    def definition(self) -> Any:
        return S(For("forever", True, Wait("for a tick", On("tick", self.tick))))

    def tick(self) -> None:
        self.turns += 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (for CI smoke runs)")
    args = parser.parse_args(argv)
    rounds = 7 if args.quick else 25
    print(f"gorch interpreter benchmarks — Python {sys.version.split()[0]}, medians of {rounds}")
    print()

    # 1. gorchestrate's scenario
    run_us = median_us(run_loop_workflow, rounds, 200)
    probe = LoopWorkflow()
    st = new_state("1", "loop")
    resume(probe, st)
    handle_callback(EVENT, probe, st)
    resume(probe, st)
    handle_callback(EVENT, probe, st)
    resume(probe, st)
    gorch_units = st.pc
    print("1. gorchestrate TestLoopWorkflow (resume, event, resume, event, resume)")
    print(
        f"   per run:  {run_us:8.1f} µs   (target <= 95 µs; gorchestrate Go ~16 µs, "
        f"a straightforward Python port ~220 µs, SpiffWorkflow ~1,840 µs)"
    )
    print(
        f"   per step: {run_us / 19:8.2f} µs   (19 steps as gorchestrate counts them; "
        f"gorch's own pc counts {gorch_units} units: {run_us / gorch_units:.2f} µs each)"
    )
    print()

    # 2. request-handler pattern
    json_us = median_us(run_loop_workflow_json, rounds, 100)
    wf = LoopWorkflow()
    state = new_state("1", "loop")
    resume(wf, state)
    ls_us = median_us(lambda: load_save_only(dumps(state), dumps(wf)), rounds, 200) / 5
    added = (json_us - run_us) / 5
    print("2. the same run with loads/dumps of state and data around each of the 5 calls")
    print(f"   per run:  {json_us:8.1f} µs")
    print(
        f"   added per load+save: {added:6.1f} µs   (target <= 15 µs; "
        f"load+save alone, measured directly: {ls_us:.1f} µs)"
    )
    print(f"   state JSON: {len(dumps(state))} bytes, data JSON: {len(dumps(wf))} bytes")
    print()

    # 3. scaling
    print("3. sequential definitions: cost per executed step")
    per_step = {}
    for n in (10, 100, 1000):
        cls = sequential_class(n)

        def run(cls: type = cls) -> None:
            resume(cls(), new_state("s", "seq"))

        inner = max(1, 2000 // n)
        per_step[n] = median_us(run, rounds, inner) / n
        print(f"   {n:5d} steps: {per_step[n]:6.2f} µs per step")
    print(f"   ratio 1000/10: {per_step[1000] / per_step[10]:.2f}x   (target <= 2x)")
    print()

    # 4. state size over a long loop
    print("4. a loop with a wait, 10,000 turns: serialized state size")
    wf4 = LongLoop()
    st4 = new_state("long", "loop")
    resume(wf4, st4)
    sizes = {}
    for turn in range(1, 10_001):
        handle_callback(CallbackRequest(name="tick"), wf4, st4)
        resume(wf4, st4)
        if turn in (1, 10, 100, 1000, 10_000):
            sizes[turn] = len(dumps(st4))
    for turn, size in sizes.items():
        print(f"   after {turn:6d} turns: {size} bytes")
    print("   (only the pc's digits grow: bounded by the width of an integer)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
