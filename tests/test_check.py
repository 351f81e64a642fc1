"""The deploy check (every store): each incompatible change of a definition is found with the
ids of the instances it strands, once per problem; a declared rename is not a problem, and
what the check passes the engine runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar

import pytest
from _deploy_workflows import (
    ChargeIsAWait,
    DeclaredRename,
    NoNotify,
    NoTimeout,
    RenamedWait,
    Shop,
    TextQty,
    seed,
)

from gorch import (
    CheckProblem,
    CheckReport,
    DefinitionError,
    Engine,
    InputError,
    RunStatus,
    StateMismatchError,
    Worker,
    validate,
)
from gorch.engine import PROBLEM_KINDS
from gorch.store import MemoryStore, Store


@pytest.fixture
def ids(store: Store) -> dict[str, list[str]]:
    return seed(Engine(store, {"shop": Shop}))


def check(store: Store, cls: type, **kw: Any) -> CheckReport:
    return Engine(store, {"shop": cls}).check(**kw)


def only(report: CheckReport) -> CheckProblem:
    assert len(report.problems) == 1, report
    return report.problems[0]


def test_the_code_that_wrote_them_runs_them_all(store: Store, ids: dict[str, list[str]]) -> None:
    report = check(store, Shop)
    assert report.ok and report.problems == ()
    assert report.checked == 5  # the finished one is not checked
    assert str(report) == "ok: the code runs all 5 unfinished instance(s)"


def test_a_renamed_wait_strands_the_threads_that_stand_there(
    store: Store, ids: dict[str, list[str]]
) -> None:
    p = only(check(store, RenamedWait))
    assert (p.kind, p.workflow, p.name, p.count) == ("missing_statement", "shop", "for pay", 3)
    assert sorted(p.ids) == ids["w"]
    assert p.suggestions == ("for payment",)
    assert "no longer has" in p.message and "rename" in p.message
    text = str(check(store, RenamedWait))
    assert text.startswith("1 problem(s) in 5 unfinished instance(s):\n- shop: threads stand")
    assert "Did you mean 'for payment'?" in text


def test_a_declared_rename_is_no_problem(store: Store, ids: dict[str, list[str]]) -> None:
    assert check(store, DeclaredRename).ok


def test_a_deleted_event_strands_the_threads_that_wait_for_it(
    store: Store, ids: dict[str, list[str]]
) -> None:
    p = only(check(store, NoTimeout))
    assert (p.kind, p.name, p.count, sorted(p.ids)) == ("missing_event", "late", 3, ids["w"])


def test_a_statement_of_another_kind_is_found(store: Store, ids: dict[str, list[str]]) -> None:
    p = only(check(store, ChargeIsAWait))
    assert (p.kind, p.name, sorted(p.ids)) == ("changed_statement", "charge", ids["f"])
    assert "stand at Step 'charge', but it is now a Wait in the main body" in p.message


def test_a_thread_whose_go_is_gone_is_found(store: Store, ids: dict[str, list[str]]) -> None:
    report = check(store, NoNotify)
    by_kind = {p.kind: p for p in report.problems}
    # The thread's body is gone, and its Wait is now in another thread's body.
    assert set(by_kind) == {"missing_thread", "changed_statement"}
    gone = by_kind["missing_thread"]
    assert (gone.name, gone.count, gone.suggestions) == ("notify", 5, ("notifier",))
    assert sorted(gone.ids) == sorted(ids["w"] + ids["f"])
    assert "in thread 'notifier'" in by_kind["changed_statement"].message


def test_a_field_whose_type_changed_is_found_once(store: Store, ids: dict[str, list[str]]) -> None:
    engine = Engine(store, {"shop": Shop})
    engine.start("shop", Shop(qty=7), id="w-7")  # another value: the same problem
    p = only(check(store, TextQty))
    assert (p.kind, p.name, p.count) == ("unreadable_data", "$.qty", 6)
    assert p.message == "the data does not load as TextQty: expected text @ $.qty"


def test_an_unregistered_workflow_is_a_problem(store: Store, ids: dict[str, list[str]]) -> None:
    report = Engine(store, {"shops": Shop}).check()
    p = only(report)
    assert (p.kind, p.workflow, p.name, p.count) == ("unknown_workflow", "shop", "shop", 5)
    assert p.suggestions == ("shops",)


def test_the_check_pages_and_samples(store: Store, ids: dict[str, list[str]]) -> None:
    p = only(check(store, RenamedWait, page=2, sample=2))
    assert p.count == 3 and len(p.ids) == 2 and set(p.ids) <= set(ids["w"])
    assert str(p).endswith(", +1 more")
    assert check(store, Shop, page=1).checked == 5
    assert check(store, Shop, workflow="nothing").checked == 0
    for bad in ({"page": 0}, {"sample": "3"}, {"sample": True}):
        with pytest.raises(InputError, match="must be a whole number from 1"):
            check(store, Shop, **bad)


def test_every_problem_kind_is_documented_and_in_json(
    store: Store, ids: dict[str, list[str]]
) -> None:
    doc = check(store, NoNotify).to_json()
    assert doc["ok"] is False and doc["checked"] == 5
    for p in doc["problems"]:
        assert p["kind"] in PROBLEM_KINDS
        assert set(p) == {"kind", "workflow", "name", "message", "count", "ids", "suggestions"}


def test_what_the_check_refuses_the_engine_refuses(store: Store, ids: dict[str, list[str]]) -> None:
    """The check says in advance what the interpreter will refuse when the instance runs."""
    with pytest.raises(StateMismatchError, match="'for pay'"):
        Engine(store, {"shop": RenamedWait}).send("w-0", "Pay")
    declared = Engine(store, {"shop": DeclaredRename})
    declared.send("w-0", "Pay")
    done = declared.get("w-0")
    assert (done.status, done.data.log) == (RunStatus.FINISHED, ["paid", "charged", "shipped"])
    assert declared.check().ok


def test_renames_are_validated_at_registration() -> None:
    @dataclass
    class Bad(Shop):
        renames: ClassVar[dict[str, str]] = {
            "charge": "ship",  # the old name is still a statement
            "gone": "nowhere",  # the new name is not one
            "a": "b",  # a chain: a -> b -> ship
            "b": "ship",
        }

    with pytest.raises(DefinitionError) as e:
        Engine(MemoryStore(), {"shop": Bad})
    text = "\n".join(e.value.problems)
    assert "renames 'charge' -> 'ship': 'charge' is still a statement" in text
    assert "renames 'gone' -> 'nowhere': the definition has no statement 'nowhere'" in text
    assert "renames 'a' -> 'b': 'b' is renamed again (to 'ship'); renames do not chain" in text
    assert len(e.value.problems) == 3

    @dataclass
    class Cycle(Shop):
        renames: ClassVar[dict[str, str]] = {"x": "y", "y": "x"}

    with pytest.raises(DefinitionError, match="do not chain"):
        validate(Cycle)

    @dataclass
    class NotADict(Shop):
        renames: ClassVar[Any] = ["for pay"]

    with pytest.raises(DefinitionError, match="renames must be a dict"):
        validate(NotADict)


def test_a_renamed_timeout_still_fires(store: Store, gorch_time: Any) -> None:
    """A timer stored under the old name of its Timeout fires the renamed one."""
    Engine(store, {"shop": Shop}).start("shop", Shop(), id="t")
    assert [t.name for t in store.timers("t")] == ["late"]
    engine = Engine(store, {"shop": DeclaredRename})
    gorch_time.tick(timedelta(hours=2))
    Worker(engine).run_once()
    inst = engine.get("t")
    assert (inst.status, inst.data.log) == (RunStatus.FINISHED, ["charged", "shipped"])
    assert [(h.kind, h.name) for h in engine.history("t") if h.kind == "timer"] == [
        ("timer", "late")
    ]
