"""Waiting and following over HTTP: ``GET /instances/{id}/wait`` (a long poll), the change feed
``GET /changes`` and its server-sent events ``GET /changes/stream``, and the instance JSON's
``parent``, ``children`` and ``at_statements``.

Served by real uvicorn (``LiveServer``) on a real SQLite file to a real httpx client, over an
``Engine`` and over an ``AsyncEngine``, with the app's own worker (it runs the children). Times
are measured from the commit the wait or the stream was woken by: each must be well under a
second, as nothing polls.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from _cli_together_workflows import Delivery

from gorch import AsyncEngine, Child, ChildResult, Engine, On, S, Step, Wait
from gorch.http import PROBLEM, Auth, create_app
from gorch.http._routes import changes as changes_routes
from gorch.store import SQLStore
from gorch.testing.http import LiveServer

READER = {"Authorization": "Bearer reader-t"}
"""A token with a role no route asks for: reading needs only a valid token."""
AUTH = Auth({"reader-t": ["Customer"], "admin-t": ["admin"]})


@dataclass
class Gate:
    """Waits at "for go" until Go comes, then finishes."""

    went: int = 0

    def definition(self) -> Any:
        return S(Wait("for go", On("Go", self.go)), Step("done", self.done))

    def go(self) -> None:
        self.went += 1

    def done(self) -> None:
        pass


@dataclass
class Parent:
    """Starts a Delivery and finishes when it has ended."""

    ended: str = ""

    def definition(self) -> Any:
        return S(Child("deliver", "delivery", self.make, self.done))

    def make(self) -> Delivery:
        return Delivery("Via Roma 1")

    def done(self, r: ChildResult) -> None:
        self.ended = r.status.value


WORKFLOWS: dict[str, type] = {"gate": Gate, "parent": Parent, "delivery": Delivery}


@dataclass
class Served:
    """The app (over an Engine or an AsyncEngine), its engine and a client to it."""

    engine: Engine
    client: httpx.Client
    app: Any
    timers: list[threading.Timer] = field(default_factory=list)

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.client.get(path, params=params, headers=READER)

    def go_later(self, id: str, delay: float = 0.2) -> dict[str, float]:
        """Send Go to ``id`` over HTTP from another thread after ``delay``; the returned dict
        gets ``committed``, the monotonic time the send's answer came back (its commit done)."""
        out: dict[str, float] = {}

        def send() -> None:
            r = self.client.post(f"/instances/{id}/events/Go", headers=READER)
            out["committed"] = time.monotonic()
            assert r.status_code == 200, r.text

        timer = threading.Timer(delay, send)
        timer.start()
        self.timers.append(timer)
        return out

    def join(self) -> None:
        for t in self.timers:
            t.join(5)


@pytest.fixture
def make_served(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    with ExitStack() as stack:
        n = iter(range(100))

        def make(face: str = "Engine") -> Served:
            store = SQLStore(f"sqlite:///{tmp_path / f'together{next(n)}.db'}")
            stack.callback(store.close)
            served: Engine | AsyncEngine
            if face == "AsyncEngine":
                served = AsyncEngine(store, WORKFLOWS)
                stack.callback(served.close)
                engine = served.engine
            else:
                served = engine = Engine(store, WORKFLOWS)
            app = create_app(served, auth=AUTH, worker=True)
            url = stack.enter_context(LiveServer(app))
            client = stack.enter_context(httpx.Client(base_url=url, timeout=20))
            s = Served(engine, client, app)
            stack.callback(s.join)
            return s

        yield make


@pytest.fixture(params=["Engine", "AsyncEngine"])
def served(make_served: Callable[..., Served], request: pytest.FixtureRequest) -> Served:
    return make_served(request.param)


def problem(r: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body: dict[str, Any] = r.json()
    assert body["status"] == status and body["type"] == f"urn:gorch:problem:{kind}", body
    assert body["instance"] == r.request.url.path
    return body


# --------------------------------------------------------------------------------------------
# GET /instances/{id}/wait


def test_wait_returns_when_the_instance_finishes(served: Served) -> None:
    served.engine.start("gate", Gate(), "g-1")
    sent = served.go_later("g-1", 0.2)
    began = time.monotonic()
    r = served.get("/instances/g-1/wait", timeout=10)
    returned, returned_at = time.monotonic(), datetime.now(UTC)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "finished" and body["data"] == {"went": 1}
    assert body.keys() == served.get("/instances/g-1").json().keys()
    assert 0.2 <= returned - began < 1.0, returned - began
    served.join()
    assert returned - sent["committed"] < 0.5  # woken by the commit, not by a poll
    after_commit = (returned_at - datetime.fromisoformat(body["updated_at"])).total_seconds()
    assert after_commit < 0.5, after_commit
    print(f"wait returned {after_commit * 1000:.1f} ms after the commit")


def test_wait_until_a_statement_or_statuses_answers_at_once_when_it_is_there(
    served: Served,
) -> None:
    served.engine.start("gate", Gate(), "g-2")
    for until in ["at:for go", "waiting", "failed,waiting,paused", " waiting , paused "]:
        began = time.monotonic()
        r = served.get("/instances/g-2/wait", until=until, timeout=5)
        assert r.status_code == 200, (until, r.text)
        assert r.json()["at_statements"] == ["for go"]
        assert time.monotonic() - began < 1.0, until


def test_a_wait_that_times_out_is_a_problem_saying_where_it_stands(served: Served) -> None:
    served.engine.start("gate", Gate(), "g-3")
    version = served.engine.get("g-3").version
    began = time.monotonic()
    r = served.get("/instances/g-3/wait", until="finished", timeout=0.3)
    assert 0.3 <= time.monotonic() - began < 1.5
    body = problem(r, 408, "wait-timeout")
    assert body["instance_status"] == "waiting"
    assert body["at_statements"] == ["for go"]
    assert body["instance_id"] == "g-3" and body["error"] == "WaitTimeout"
    assert "status finished" in body["detail"] and "0.3 s" in body["detail"]
    assert served.engine.get("g-3").version == version  # nothing changed
    r = served.get("/instances/g-3/wait", until="at:elsewhere", timeout=0)
    assert problem(r, 408, "wait-timeout")["at_statements"] == ["for go"]


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({"until": "done"}, "query.until"),
        ({"until": "finished,nope"}, "query.until"),
        ({"until": "at:"}, "query.until"),
        ({"timeout": 61}, "query.timeout"),
        ({"timeout": -1}, "query.timeout"),
        ({"timeout": "soon"}, "query.timeout"),
        ({"timeout": "inf"}, "query.timeout"),
    ],
)
def test_a_bad_until_or_timeout_is_malformed_and_names_the_parameter(
    make_served: Callable[..., Served], params: dict[str, Any], names: str
) -> None:
    served = make_served()
    served.engine.start("gate", Gate(), "g-4")
    body = problem(served.get("/instances/g-4/wait", **params), 400, "malformed")
    assert names in body["detail"] and any(names in e for e in body["errors"]), body


def test_waiting_for_an_unknown_instance_is_not_found(served: Served) -> None:
    problem(served.get("/instances/nobody/wait", timeout=1), 404, "not-found")


def test_the_wait_and_feed_routes_need_a_token(make_served: Callable[..., Served]) -> None:
    served = make_served()
    served.engine.start("gate", Gate(), "g-5")
    for path in ["/instances/g-5/wait?timeout=0", "/changes", "/changes/stream"]:
        for headers in [{}, {"Authorization": "Bearer nope"}]:
            r = served.client.get(path, headers=headers)
            problem(r, 401, "unauthorized")


def test_waits_have_threads_of_their_own_and_do_not_starve_other_routes(
    served: Served,
) -> None:
    """More waits than the default thread pool has (anyio's 40; the AsyncEngine's is
    smaller): the other routes still answer at once, and every wait returns when it ends."""
    served.engine.start("gate", Gate(), "g-6")
    waits = 45
    with ThreadPoolExecutor(waits) as pool:
        futures = [pool.submit(served.get, "/instances/g-6/wait", timeout=20) for _ in range(waits)]
        deadline = time.monotonic() + 10
        while served.app.state.gorch_waits.borrowed_tokens < waits:
            assert time.monotonic() < deadline, "the waits did not all start"
            time.sleep(0.02)
        began = time.monotonic()
        assert served.get("/instances").status_code == 200
        assert served.get("/instances/g-6").json()["status"] == "waiting"
        assert time.monotonic() - began < 1.0
        served.go_later("g-6", 0)
        answers = [f.result(timeout=10) for f in futures]
    assert [a.status_code for a in answers] == [200] * waits
    assert {a.json()["status"] for a in answers} == {"finished"}
    assert served.app.state.gorch_waits.borrowed_tokens == 0


def test_when_every_wait_thread_is_taken_a_wait_is_refused_with_503(
    make_served: Callable[..., Served], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(changes_routes, "WAIT_THREADS", 2)
    served = make_served()
    served.engine.start("gate", Gate(), "g-7")
    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(served.get, "/instances/g-7/wait", timeout=10) for _ in "ab"]
        deadline = time.monotonic() + 10
        while getattr(served.app.state, "gorch_waits", None) is None or (
            served.app.state.gorch_waits.borrowed_tokens < 2
        ):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        r = served.get("/instances/g-7/wait", timeout=10)
        assert problem(r, 503, "busy")["title"] == "Too many waits"
        assert r.headers["retry-after"] == "1"
        assert served.get("/changes", wait=1).status_code == 503
        assert served.get("/changes").status_code == 200  # no wait: an ordinary read
        served.go_later("g-7", 0)
        assert [f.result(timeout=10).status_code for f in futures] == [200, 200]


# --------------------------------------------------------------------------------------------
# The instance JSON: parent, children, at_statements


def test_the_instance_json_says_its_parent_children_and_where_it_waits(served: Served) -> None:
    served.engine.start("parent", Parent(), "p-1")
    r = served.get("/instances/p-1/wait", until="finished", timeout=20)  # the app's worker
    assert r.status_code == 200, r.text
    parent = r.json()
    assert parent["data"] == {"ended": "finished"}
    assert parent["parent"] is None and parent["at_statements"] == []
    assert len(parent["children"]) == 1
    assert served.get("/instances/p-1").json()["children"] == parent["children"]
    child = served.get(f"/instances/{parent['children'][0]}").json()
    assert child["workflow"] == "delivery" and child["status"] == "finished"
    assert child["parent"] == "p-1" and child["children"] == []
    assert child["data"] == {"address": "Via Roma 1", "driven": True}

    served.engine.start("gate", Gate(), "g-8")
    gate = served.get("/instances/g-8").json()
    assert (gate["at_statements"], gate["parent"], gate["children"]) == (["for go"], None, [])


# --------------------------------------------------------------------------------------------
# GET /changes


def test_the_feed_pages_with_next(served: Served) -> None:
    for n in range(3):
        served.engine.start("gate", Gate(), f"f-{n}")
    page = served.get("/changes").json()
    assert set(page) == {"items", "next"}
    items = page["items"]
    assert [c["seq"] for c in items] == [1, 2, 3] and page["next"] == 3
    assert items[0].keys() == {"seq", "at", "instance", "workflow", "status", "at_statements"}
    assert [(c["instance"], c["workflow"], c["status"], c["at_statements"]) for c in items] == [
        (f"f-{n}", "gate", "waiting", ["for go"]) for n in range(3)
    ]
    assert items[0]["at"].endswith("+00:00")
    first = served.get("/changes", limit=2).json()
    assert [c["seq"] for c in first["items"]] == [1, 2] and first["next"] == 2
    rest = served.get("/changes", after=first["next"], limit=2).json()
    assert [c["seq"] for c in rest["items"]] == [3] and rest["next"] == 3
    assert served.get("/changes", after=3).json() == {"items": [], "next": 3}
    served.engine.send("f-1", "Go")
    more = served.get("/changes", after=3).json()
    assert [(c["instance"], c["status"]) for c in more["items"]][-1] == ("f-1", "finished")


def test_the_feed_long_polls_for_the_next_change(served: Served) -> None:
    served.engine.start("gate", Gate(), "f-9")
    cursor = served.get("/changes").json()["next"]
    sent = served.go_later("f-9", 0.2)
    began = time.monotonic()
    page = served.get("/changes", after=cursor, wait=10).json()
    returned = time.monotonic()
    assert page["items"] and page["items"][0]["instance"] == "f-9"
    assert 0.2 <= returned - began < 1.0
    served.join()
    # the first change of the send is committed before its answer: no later than it
    assert returned - sent["committed"] < 0.5
    began = time.monotonic()
    assert served.get("/changes", after=page["next"] + 100, wait=0.3).json()["items"] == []
    assert 0.3 <= time.monotonic() - began < 1.5


@pytest.mark.parametrize(
    "params",
    [{"after": -1}, {"after": "x"}, {"after": 2**63}, {"limit": 0}, {"limit": 1001},
     {"wait": 61}, {"wait": -1}],
)  # fmt: skip
def test_a_bad_feed_query_is_malformed(
    make_served: Callable[..., Served], params: dict[str, Any]
) -> None:
    body = problem(make_served().get("/changes", **params), 400, "malformed")
    assert f"query.{next(iter(params))}" in body["detail"]


# --------------------------------------------------------------------------------------------
# GET /changes/stream


class Events:
    """The events of a server-sent event stream, read line by line."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines = response.iter_lines()
        self.comments: list[str] = []
        self.retry: int | None = None

    def next(self) -> dict[str, str]:
        """The next dispatched event: its fields (``id``, ``event``, ``data``)."""
        fields: dict[str, str] = {}
        for line in self.lines:
            if not line:
                if "data" in fields:
                    return fields
                fields = {}
            elif line.startswith(":"):
                self.comments.append(line[1:].strip())
            else:
                name, _, value = line.partition(":")
                if name == "retry":
                    self.retry = int(value)
                else:
                    fields[name] = value.removeprefix(" ")
        raise AssertionError("the stream ended")

    def comment(self) -> str:
        """The next comment line."""
        for line in self.lines:
            if line.startswith(":"):
                return line[1:].strip()
        raise AssertionError("the stream ended")


def test_the_stream_sends_each_change_and_resumes_after_last_event_id(served: Served) -> None:
    for n in range(3):
        served.engine.start("gate", Gate(), f"s-{n}")
    with served.client.stream("GET", "/changes/stream?after=0", headers=READER) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["cache-control"] == "no-cache"
        events = Events(r)
        got = [events.next() for _ in range(3)]
        assert events.retry == 2000
    assert [(e["id"], e["event"]) for e in got] == [
        ("1", "change"),
        ("2", "change"),
        ("3", "change"),
    ]
    assert json.loads(got[0]["data"]) == served.get("/changes", limit=1).json()["items"][0]

    # an EventSource reconnects with Last-Event-ID: the stream goes on after it (over after=)
    headers = {**READER, "Last-Event-ID": "2"}
    with served.client.stream("GET", "/changes/stream?after=0", headers=headers) as r:
        events = Events(r)
        assert events.next()["id"] == "3"
        # and then live: a change committed now arrives at once
        sent = served.go_later("s-1", 0.2)
        began = time.monotonic()
        live = json.loads(events.next()["data"])
        arrived, arrived_at = time.monotonic(), datetime.now(UTC)
        assert live["instance"] == "s-1" and live["seq"] == 4
        assert arrived - began < 1.0
    served.join()
    after_commit = (arrived_at - datetime.fromisoformat(live["at"])).total_seconds()
    assert after_commit < 0.5, after_commit
    assert arrived - sent["committed"] < 0.5
    print(f"the stream's event came {after_commit * 1000:.1f} ms after its commit")


def test_the_stream_starts_from_now_without_a_cursor(served: Served) -> None:
    served.engine.start("gate", Gate(), "s-old")
    with served.client.stream("GET", "/changes/stream", headers=READER) as r:
        events = Events(r)
        assert events.comment() == "changes after 1"
        served.engine.start("gate", Gate(), "s-new")
        event = events.next()
    assert event["id"] == "2" and '"instance":"s-new"' in event["data"]


def test_the_stream_keeps_the_connection_alive_while_idle(
    make_served: Callable[..., Served], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(changes_routes, "KEEP_ALIVE", 0.2)
    served = make_served()
    with served.client.stream("GET", "/changes/stream", headers=READER) as r:
        events = Events(r)
        assert events.comment() == "changes after 0"
        began = time.monotonic()
        assert events.comment() == "keep-alive"
        assert events.comment() == "keep-alive"
        assert time.monotonic() - began < 2


def test_the_stream_stops_when_the_client_goes_away(make_served: Callable[..., Served]) -> None:
    served = make_served()
    with served.client.stream("GET", "/changes/stream", headers=READER) as r:
        events = Events(r)  # kept: closing its line iterator would close the connection
        assert events.comment() == "changes after 0"
        deadline = time.monotonic() + 5
        while served.app.state.gorch_waits.borrowed_tokens != 1:
            assert time.monotonic() < deadline, "the stream does not wait for changes"
            time.sleep(0.02)
    deadline = time.monotonic() + 5  # closed: the server cancels the stream and its wait
    while served.app.state.gorch_waits.borrowed_tokens:
        assert time.monotonic() < deadline, "the stream goes on after its client went away"
        time.sleep(0.02)


@pytest.mark.parametrize("last", ["x", "-1", "1.5", str(2**63)])
def test_a_bad_last_event_id_is_malformed(make_served: Callable[..., Served], last: str) -> None:
    served = make_served()
    r = served.client.get("/changes/stream", headers={**READER, "Last-Event-ID": last})
    body = problem(r, 400, "malformed")
    assert "Last-Event-ID" in body["detail"]


def test_the_openapi_document_describes_the_routes(make_served: Callable[..., Served]) -> None:
    doc = make_served().client.get("/openapi.json").json()
    wait = doc["paths"]["/instances/{id}/wait"]["get"]
    assert "at:<statement>" in wait["description"] and "60" in wait["description"]
    assert wait["responses"]["408"]["content"][PROBLEM]
    assert wait["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Instance"
    }
    assert wait["security"] == [{"bearer": []}]
    stream = doc["paths"]["/changes/stream"]["get"]
    assert "text/event-stream" in stream["responses"]["200"]["content"]
    assert {p["name"] for p in stream["parameters"]} == {"after", "Last-Event-ID"}
    assert doc["paths"]["/changes"]["get"]["security"] == [{"bearer": []}]
    instance = doc["components"]["schemas"]["Instance"]["properties"]
    assert {"parent", "children", "at_statements"} <= instance.keys()
