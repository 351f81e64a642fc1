"""An instance's position on its graph: where each thread stands, and what already ran.

History names only the statements that leave an entry (steps, events, timers, failures), so
:func:`position` infers the rest, in this order: a statement that contains one that ran (its
loop, branch, wait, ``Go``) ran too; unless a goto jumped, what comes before it in its sequence
ran; the start ran if anything in the main thread did; a ``Go`` thread that ran and stands
nowhere now has ended; and the way around a branch that was taken (its ``otherwise``) was not.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from gorch.engine import HistoryKind
from gorch.graph._model import Graph, Marks, NodeKind, Seq
from gorch.state import MAIN_THREAD, ThreadStatus

_RAN = (HistoryKind.STEP, HistoryKind.EVENT, HistoryKind.TIMER)
_FAILED = (HistoryKind.STEP_FAILED, HistoryKind.FAILED)
_BRANCHES = (NodeKind.IF, NodeKind.SWITCH)


def position(graph: Graph, instance: Any, history: Iterable[Any]) -> Marks:
    """Where ``instance`` stands on ``graph``, and what already ran (from ``history``).

    ``instance`` is a :class:`gorch.engine.Instance` (or anything with ``status`` and
    ``state``); ``history`` its :class:`gorch.engine.HistoryEntry` list, oldest first.
    Statements the code no longer has are left out.
    """
    history = list(history)
    done, failed = _from_history(graph, history)
    threads = getattr(instance.state, "threads", [])
    current = _current(graph, threads, done)
    if str(getattr(instance, "status", "")) == "finished":
        current[graph.end] = []
    _containers(graph, done, current)
    if not any(h.kind == HistoryKind.GOTO for h in history):
        _before(graph, graph.tree, done, current)
    _start_and_thread_ends(graph, threads, done, current)
    return Marks(
        {k: tuple(v) for k, v in current.items()},
        frozenset(done),
        frozenset(failed),
        frozenset(_untaken(graph, done)),
    )


def _from_history(graph: Graph, history: Sequence[Any]) -> tuple[set[str], set[str]]:
    """What history says ran, and which steps failed and have not run successfully since."""
    done: set[str] = set()
    failed: set[str] = set()
    for h in history:
        nid = graph.by_name.get(h.name)
        if h.kind == HistoryKind.STARTED:
            done.add(graph.start)
        elif nid is None:
            continue
        elif h.kind in _RAN:
            done.add(nid)
            failed.discard(nid)
        elif h.kind in _FAILED:
            failed.add(nid)
    return done, failed


def _current(graph: Graph, threads: Iterable[Any], done: set[str]) -> dict[str, list[str]]:
    """Node id -> the threads standing there; a thread that is resuming past its node ran it."""
    current: dict[str, list[str]] = {}
    for t in threads:
        if t.cur_step:
            nid = graph.by_name.get(t.cur_step)
        elif t.id == MAIN_THREAD:
            nid = graph.start
        else:
            nid = graph.by_name.get(t.name)
        if nid is None:
            continue
        current.setdefault(nid, []).append(t.id)
        if t.status is ThreadStatus.RESUMING:
            done.add(nid)  # it ran; the thread goes on after it
    return current


def _containers(graph: Graph, done: set[str], current: Mapping[str, Any]) -> None:
    """Mark done what contains a statement that ran, or a thread now: its loop, branch, wait,
    ``Go``."""
    for nid in [*done, *current]:
        parent = graph.nodes[nid].parent
        while parent and parent not in done:
            done.add(parent)
            parent = graph.nodes[parent].parent


def _before(graph: Graph, seq: Seq, done: set[str], current: Mapping[str, Any]) -> None:
    """Mark done every item of ``seq`` (and of the sequences in it) before the last one
    reached: control enters a sequence at its start, so whatever precedes a reached item ran.
    The end is not reached that way: a Return jumps there."""
    heads = [it if isinstance(it, str) else it.head for it in seq.items]
    reached = [
        i for i, nid in enumerate(heads) if (nid in done or nid in current) and nid != graph.end
    ]
    if reached:
        done.update(heads[: reached[-1]])
    for it in seq.items:
        if not isinstance(it, str):
            for body in it.bodies():
                _before(graph, body, done, current)


def _start_and_thread_ends(
    graph: Graph, threads: Iterable[Any], done: set[str], current: Mapping[str, Any]
) -> None:
    """Mark done the start if anything of the main thread ran or stands somewhere, and the end
    of each ``Go`` thread that ran and stands nowhere now."""
    for nid in list(done) + list(current):
        if graph.nodes[nid].thread == MAIN_THREAD:
            done.add(graph.start)
            break
    live = {t.name for t in threads}
    for n in graph.nodes.values():
        if n.kind == NodeKind.THREAD_END and n.parent in done and n.thread not in live:
            done.add(n.id)


def _untaken(graph: Graph, done: set[str]) -> set[tuple[str, str, str]]:
    """``(src, dst, label)`` of each way around a branch (its ``otherwise``, an empty case: an
    edge from an ``If`` or ``Switch`` to a node outside it) when one of its cases was taken."""
    untaken = set()
    for e in graph.edges:
        src = graph.nodes[e.src]
        if src.kind not in _BRANCHES or graph.nodes[e.dst].parent == src.id:
            continue
        cases = (x.dst for x in graph.edges if x.src == src.id)
        if any(graph.nodes[d].parent == src.id and d in done for d in cases):
            untaken.add((e.src, e.dst, e.label))
    return untaken
