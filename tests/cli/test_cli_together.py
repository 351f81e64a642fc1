"""``gorch wait``, ``gorch changes`` (one page, and ``--follow`` in a real process stopped by a
real signal), and what ``gorch show`` and ``gorch list --parent`` say of a parent and its
child: a shop (``_cli_together_workflows``) whose ``Child`` starts a delivery, then waits for a
signature.
"""

from __future__ import annotations

import json
import os
import queue
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import _cli_together_workflows
import pytest
from _gorch import ROOT, Gorch, flat

from gorch.engine import Engine, Worker
from gorch.store.sql import SQLStore

WORKFLOWS = "_cli_together_workflows:WORKFLOWS"
TESTS = str(ROOT / "tests")
CHILD = "s1.deliver.1"  # the id the shop's Child gives its delivery (parent, statement, pc)


@pytest.fixture
def t(tmp_path: Path) -> Gorch:
    return Gorch(tmp_path / "gorch.db", WORKFLOWS).init()


@contextmanager
def engine(t: Gorch) -> Iterator[Engine]:
    store = SQLStore(f"sqlite:///{t.db}")
    try:
        yield Engine(store, _cli_together_workflows.WORKFLOWS)
    finally:
        store.close()


def snapshot(t: Gorch, id: str) -> tuple[str, int, int]:
    """(status, version, history length): what waiting must leave alone."""
    with engine(t) as e:
        inst = e.get(id)
        return inst.status.value, inst.version, len(e.history(id))


def started(t: Gorch, id: str = "s1") -> None:
    """A shop waiting at its Child, the delivery started and not run yet."""
    t("start", "shop", "--id", id)


def delivered(t: Gorch, id: str = "s1") -> None:
    """A shop whose delivery finished: it waits for a signature."""
    started(t, id)
    assert t("worker", "--once").stdout == "did 2 items of work\n"


# -- wait -------------------------------------------------------------------------------------


def test_wait_prints_the_instance_once_it_is_there(t: Gorch) -> None:
    delivered(t)
    out = t("wait", "s1", "--at", "for a signature", "--no-data").stdout
    lines = out.splitlines()
    assert lines[0].startswith("s1 (shop) waiting  version ")
    assert "waits at 'for a signature'" in lines
    assert f"children {CHILD} (delivery, finished)" in lines
    # the child ended: the default is any end (finished or cancelled)
    child = t("wait", CHILD, "--timeout", "0").stdout
    assert child.startswith(f"{CHILD} (delivery) finished ") and "\nparent s1\n" in child
    assert '"driven": true' in child  # the data, as gorch show prints it


def test_wait_blocks_until_another_process_moves_the_instance(t: Gorch) -> None:
    started(t)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            time.sleep(0.3)
            with engine(t) as e:
                w = Worker(e)
                while w.run_once():
                    pass
        except BaseException as exc:  # pragma: no cover - shown by the assertion below
            errors.append(exc)

    worker = threading.Thread(target=work)
    begun = time.monotonic()
    worker.start()
    try:
        shown = t.json("wait", "s1", "--at", "for a signature", "--timeout", "20")
    finally:
        worker.join(30)
    assert errors == []
    assert time.monotonic() - begun < 15
    assert shown["status"] == "waiting" and shown["at_statements"] == ["for a signature"]
    assert shown["children"] == [CHILD] and shown["parent"] is None
    assert shown["data"] == {"ended": "finished"}
    assert [w["at"] for w in shown["waits"]] == ["for a signature"]


def test_wait_until_one_of_several_statuses(t: Gorch) -> None:
    delivered(t)
    t("send", "s1", "Sign")
    out = t.json("wait", "s1", "--until", "failed", "-u", "finished", "--timeout", "0")
    assert out["status"] == "finished" and out["at_statements"] == []
    assert t.json("wait", "s1", "--until", "waiting", "--until", "finished")["id"] == "s1"


def test_wait_gives_up_after_the_timeout_saying_where_it_is(t: Gorch) -> None:
    started(t)
    before = snapshot(t, "s1")
    result = t("wait", "s1", "--timeout", "0.2", code=3)
    assert result.stdout == ""
    message = flat(result.stderr)
    assert message == (
        "error: instance 's1' did not get to an end (finished or cancelled) within 0.2 s; "
        "it is waiting, at 'deliver'"
    )
    message = flat(t("wait", "s1", "--until", "finished", "--timeout", "0", code=3).stderr)
    assert "did not get to status finished within 0.0 s; it is waiting, at 'deliver'" in message
    message = flat(t("wait", "s1", "--at", "for a signature", "--timeout", "0", code=3).stderr)
    assert "did not get to statement 'for a signature'" in message
    assert t("wait", "s1", "--timeout", "0", "--json", code=3).stdout == ""
    assert snapshot(t, "s1") == before  # waiting changes nothing


def test_wait_refuses_what_it_could_never_wait_for(t: Gorch) -> None:
    started(t)
    message = t.fail("wait", "s1", "--at", "delivr")
    assert message == (
        "error: no statement 'delivr' in workflow 'shop' that a thread waits at (a Wait, a "
        "WaitFor or a Child). Did you mean 'deliver'? Its statements to wait at: 'deliver', "
        "'for a signature'"
    )
    assert "'drive' is a step of workflow 'delivery'" in t.fail("wait", CHILD, "--at", "drive")
    assert "no instance has id 's2'" in t.fail("wait", "s2")
    assert "Did you mean 's1'" in t.fail("wait", "s11")
    assert "--until and --at do not go together" in t.usage(
        "wait", "s1", "--until", "finished", "--at", "deliver"
    )
    assert "'ended' is not one of" in t.usage("wait", "s1", "--until", "ended")
    assert "-1.0 is not in the range x>=0" in t.usage("wait", "s1", "--timeout", "-1")


# -- changes ----------------------------------------------------------------------------------


def feed(t: Gorch) -> list[dict[str, Any]]:
    """The whole feed, as ``changes --json`` prints it."""
    return [json.loads(line) for line in t("changes", "--json").stdout.splitlines()]


def test_changes_pages_through_the_feed(t: Gorch) -> None:
    delivered(t)
    items = feed(t)
    assert [c["seq"] for c in items] == list(range(1, len(items) + 1))
    assert [(c["instance"], c["status"], c["at_statements"]) for c in items] == [
        ("s1", "running", ["deliver"]),
        (CHILD, "running", []),
        ("s1", "waiting", ["deliver"]),
        (CHILD, "finished", []),
        ("s1", "running", []),
        ("s1", "waiting", ["for a signature"]),
    ]
    assert {c["workflow"] for c in items} == {"shop", "delivery"}
    with engine(t) as e:  # the same as the engine's feed
        assert [c["at"] for c in items] == [
            c.at.isoformat().replace("+00:00", "+00:00") for c in e.changes()
        ]

    first = t("changes", "--limit", "2").stdout.splitlines()
    assert len(first) == 3 and first[2] == "more: gorch changes --after 2 --limit 2"
    assert first[0].split()[0] == "1" and first[0].endswith("  s1  shop  running  at 'deliver'")
    rest = [json.loads(x) for x in t("changes", "--after", "2", "--json").stdout.splitlines()]
    assert rest == items[2:]
    last = t("changes", "--after", "4", "--limit", "2").stdout.splitlines()
    assert len(last) == 3 and last[2] == "more: gorch changes --after 6 --limit 2"
    end = t("changes", "--after", "6")
    assert end.stdout == "" and end.stderr == "no changes after 6\n"
    assert t("changes", "--after", "6", "--json").stdout == ""
    assert "-1 is not in the range" in t.usage("changes", "--after", "-1")
    assert "0 is not in the range" in t.usage("changes", "--limit", "0")


class Follower:
    """``gorch changes --follow ...`` in a process of its own: its output lines as they come
    (read by a thread), and what it said on stderr once it ended."""

    def __init__(self, t: Gorch, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GORCH_")}
        env.update(PYTHONPATH=os.pathsep.join([str(ROOT), TESTS]), PYTHONUNBUFFERED="1")
        argv = ["--store", str(t.db), "--workflows", WORKFLOWS, "changes", "--follow", *args]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gorch", *argv],
            cwd=TESTS, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.lines: queue.Queue[str] = queue.Queue()
        self.reader = threading.Thread(target=self._read, args=(self.proc.stdout,))
        self.reader.start()
        self.stderr = ""

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line.rstrip("\n"))

    def take(self, n: int, within: float = 20.0) -> list[str]:
        """The next ``n`` lines, waiting up to ``within`` seconds for them."""
        deadline = time.monotonic() + within
        return [self.lines.get(timeout=max(deadline - time.monotonic(), 0.01)) for _ in range(n)]

    def stop(self, sig: signal.Signals) -> int:
        """Send ``sig``; the exit status."""
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=20)

    def close(self) -> None:
        if self.proc.poll() is None:  # only when an assertion failed before stop()
            self.proc.kill()
        self.proc.wait(timeout=20)
        self.reader.join(20)
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self.stderr = self.proc.stderr.read()
        self.proc.stdout.close()
        self.proc.stderr.close()


@contextmanager
def following(t: Gorch, *args: str) -> Iterator[Follower]:
    f = Follower(t, *args)
    try:
        yield f
    finally:
        f.close()


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_changes_follow_prints_changes_as_they_come_until_stopped(
    t: Gorch, stop: signal.Signals
) -> None:
    started(t)  # seq 1 to 3
    with following(t, "--after", "1", "--json") as f:
        assert [json.loads(x)["seq"] for x in f.take(2)] == [2, 3]  # what was there
        t("worker", "--once")  # then what comes: the delivery ends, the shop goes on
        got = [json.loads(x) for x in f.take(3)]
        assert [(c["seq"], c["instance"], c["status"]) for c in got] == [
            (4, CHILD, "finished"), (5, "s1", "running"), (6, "s1", "waiting"),
        ]  # fmt: skip
        t("send", "s1", "Sign")
        assert json.loads(f.take(1)[0])["status"] == "finished"
        assert f.lines.empty()
        assert f.stop(stop) == 0
    assert f.stderr == "" and f.lines.empty()


def test_changes_follow_for_people_says_where_to_go_on_from(t: Gorch) -> None:
    delivered(t)
    with following(t, "--after", "5") as f:
        (line,) = f.take(1)
        assert line.split()[0] == "6" and line.endswith("s1  shop  waiting  at 'for a signature'")
        assert f.stop(signal.SIGINT) == 0
    assert f.stderr == "stopped after change 6: gorch changes --after 6\n"


# -- show and list: a parent and its children -----------------------------------------------


def test_show_names_the_parent_the_children_and_where_it_waits(t: Gorch) -> None:
    started(t)
    parent = t("show", "s1", "--no-data").stdout.splitlines()
    assert parent[1:3] == [f"children {CHILD} (delivery, running)", "threads"]
    assert "waits at 'deliver'" in parent[3:]  # under the threads
    assert not any(line.startswith("parent ") for line in parent)
    child = t("show", CHILD, "--no-data").stdout.splitlines()
    assert child[0].startswith(f"{CHILD} (delivery) running ") and child[1] == "parent s1"
    assert not any(line.startswith(("children ", "waits at ")) for line in child)

    shown = t.json("show", "s1")
    assert (shown["parent"], shown["children"], shown["at_statements"]) == (
        None,
        [CHILD],
        ["deliver"],
    )
    shown = t.json("show", CHILD)
    assert (shown["parent"], shown["children"], shown["at_statements"]) == ("s1", [], [])


def test_show_lists_at_most_ten_children(t: Gorch) -> None:
    t("start", "crowd", "--id", "c")
    kids = t.json("show", "c")["children"]
    assert len(kids) == 12
    lines = t("show", "c", "--no-data").stdout.splitlines()
    (line,) = [x for x in lines if x.startswith("children ")]
    assert line.count("(delivery, running)") == 10 and kids[9] in line and kids[10] not in line
    assert lines[lines.index(line) + 1] == "  and 2 more: gorch list --parent c"


def test_list_parent_lists_only_its_children(t: Gorch) -> None:
    started(t, "s1")
    started(t, "s2")
    out = t("list", "--parent", "s1").stdout
    assert CHILD in out and "s2.deliver.1" not in out and " shop " not in out
    listed = t.json("list", "--parent", "s2")
    assert [i["id"] for i in listed["items"]] == ["s2.deliver.1"] and listed["next"] is None
    assert t.json("list", "--parent", CHILD)["items"] == []  # no children: an empty list
    assert "no instance has id 's12'. Did you mean" in t.fail("list", "--parent", "s12")


def test_list_parent_pages_keep_the_filter(t: Gorch) -> None:
    t("start", "pair", "--id", "p")
    started(t, "s1")
    with engine(t) as e:
        kids = e.get("p").children
    first = t("list", "--parent", "p", "--limit", "1").stdout.splitlines()
    more = shlex.split(first[-1])
    assert more[:7] == ["more:", "gorch", "list", "--parent", "p", "--limit", "1"]
    again = t("list", *more[3:]).stdout
    shown = [k for k in kids if k in again] + [k for k in kids if k in "\n".join(first)]
    assert sorted(shown) == sorted(kids)
