"""Repairing an instance's data on every store: ``Engine.set_data`` with an object or a JSON
merge patch (RFC 7396), its dry run and diff, its refusals (each changing nothing) and its
history entry. (The faces: tests/cli/test_cli_data.py, tests/test_http.py, tests/test_ui.py.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from _engine_workflows import PEPPERONI, WORKFLOWS, unchanged

from examples.pizza.workflow import Pizza, PizzaOrder
from gorch import (
    DataPlan,
    Engine,
    HistoryKind,
    InputError,
    InstanceStatusError,
    On,
    RunStatus,
    S,
    Step,
    Wait,
    WaitFor,
)
from gorch.engine._data import merge_patch
from gorch.store import Store

pytestmark = pytest.mark.usefixtures("engine_globals")  # tests/conftest.py


@pytest.fixture
def engine(store: Store, gorch_time: Any) -> Engine:
    e = Engine(store, WORKFLOWS)
    e.start("pizza", PizzaOrder(address="Via Roma 1"), id="o1")
    e.send("o1", "AddToCart", PEPPERONI)
    return e


def test_a_dry_run_shows_the_diff_and_changes_nothing(engine: Engine) -> None:
    with unchanged(engine, "o1"):
        plan = engine.set_data("o1", {"address": "Via Po 2"}, dry_run=True)
    assert isinstance(plan, DataPlan) and plan.changed and not plan.applied
    assert plan.before["address"] == "Via Roma 1" and plan.after["address"] == "Via Po 2"
    diff = plan.diff()
    assert diff[:2] == ["--- o1 data (before)", "+++ o1 data (after)"]
    assert '-  "address": "Via Roma 1",' in diff and '+  "address": "Via Po 2",' in diff
    assert plan.describe()[0] == "the data of 'o1' (pizza) would change:"
    assert plan.to_json()["diff"] == diff and plan.to_json()["applied"] is False


def test_a_patch_is_applied_and_recorded_with_who_and_why(engine: Engine) -> None:
    version = engine.get("o1").version
    plan = engine.set_data(
        "o1", {"address": "Via Po 2", "cart": [{"name": "funghi"}]}, actor="ana", reason="moved"
    )
    assert plan.applied and plan.describe()[0] == "the data of 'o1' (pizza) changed:"
    inst = engine.get("o1")
    assert inst.data.address == "Via Po 2" and inst.data.cart == [Pizza("funghi")]
    assert inst.status is RunStatus.WAITING and inst.version == version + 1
    assert inst.waiting_for() == ["AddToCart", "EmptyCart", "SubmitCart", "cart timed out"]
    entry = engine.history("o1", newest_first=True, limit=1)[0]
    assert (entry.kind, entry.actor, entry.reason) == (HistoryKind.DATA_SET, "ana", "moved")
    assert entry.input == plan.before and entry.output == plan.after
    assert engine.send("o1", "SubmitCart") == "submitted"  # it runs on with the new data
    assert engine.get("o1").data.cart == [Pizza("funghi")]


def test_an_object_replaces_the_data(engine: Engine) -> None:
    new = PizzaOrder(cart=[Pizza("marinara", qty=3)], status="cart", address="Corso 5")
    plan = engine.set_data("o1", new)
    assert plan.applied and plan.after["cart"] == [{"name": "marinara", "size": "medium", "qty": 3}]
    assert engine.get("o1").data == new


def test_json_replaces_the_data_with_replace(engine: Engine) -> None:
    whole = {"cart": [{"name": "marinara"}], "status": "cart", "address": "Corso 5"}
    plan = engine.set_data("o1", whole, replace=True)  # the whole data, not a patch
    assert plan.applied and engine.get("o1").data.address == "Corso 5"
    assert engine.get("o1").data.log == []  # a field it leaves out takes its default
    with unchanged(engine, "o1"), pytest.raises(InputError) as info:
        engine.set_data("o1", {"adress": "x"}, replace=True)
    assert "does not fit PizzaOrder" in str(info.value) and "address" in str(info.value)


def test_null_in_a_patch_resets_a_field_to_its_default(engine: Engine) -> None:
    engine.set_data("o1", {"address": None})
    assert engine.get("o1").data.address == ""


def test_no_change_writes_nothing(engine: Engine) -> None:
    with unchanged(engine, "o1"):
        plan = engine.set_data("o1", {"address": "Via Roma 1"})
    assert not plan.changed and not plan.applied and plan.diff() == []
    assert plan.describe() == ["the data of 'o1' would not change"]


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ({"address": 5}, "@ data.address"),
        ({"adress": "x"}, "did you mean 'address'?"),
        ({"cart": [{"qty": 2}]}, "@ data.cart[0].name"),
        ({"cart": "none"}, "@ data.cart"),
        ("a text", "not str"),
        (Pizza("x"), "not Pizza"),
        ({"log": [["nested"]]}, "@ data.log[0]"),
    ],
)
def test_data_that_does_not_fit_is_refused_and_changes_nothing(
    engine: Engine, data: Any, says: str
) -> None:
    with unchanged(engine, "o1"), pytest.raises(InputError) as info:
        engine.set_data("o1", data)
    assert says in str(info.value) and "nothing changed" in str(info.value)
    if isinstance(data, dict):
        assert info.value.details and any(says in d for d in info.value.details)


def test_a_too_deep_patch_is_refused(engine: Engine) -> None:
    deep: Any = {}
    for _ in range(100):
        deep = {"x": deep}
    with unchanged(engine, "o1"), pytest.raises(InputError, match="levels deep"):
        engine.set_data("o1", {"log": deep})


def test_a_paused_or_failed_instance_may_be_repaired_a_finished_one_not(engine: Engine) -> None:
    engine.pause("o1")
    engine.set_data("o1", {"address": "Via Po 2"})
    assert engine.get("o1").status is RunStatus.PAUSED  # the status stays
    engine.cancel("o1")
    with unchanged(engine, "o1"), pytest.raises(InstanceStatusError) as info:
        engine.set_data("o1", {"address": "Via Po 3"})
    assert str(info.value) == "cannot set the data of instance 'o1': it is cancelled"
    assert engine.refusal("set_data", "o1") is not None


def test_a_bad_actor_is_refused_before_anything(engine: Engine) -> None:
    with unchanged(engine, "o1"), pytest.raises(InputError, match="actor"):
        engine.set_data("o1", {"address": "x"}, actor="")


@pytest.mark.parametrize(
    ("target", "patch", "result"),
    [  # the examples of RFC 7396, appendix A
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        (["a", "b"], ["c", "d"], ["c", "d"]),
        ({"a": "b"}, ["c"], ["c"]),
        ({"a": "foo"}, None, None),
        ({"a": "foo"}, "bar", "bar"),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_merge_patch_follows_rfc_7396(target: Any, patch: Any, result: Any) -> None:
    assert merge_patch(target, patch) == result


@dataclass
class Approval:
    votes: int = 0
    state: str = "open"

    def definition(self) -> Any:
        return S(
            WaitFor("two votes", self.votes >= 2),
            Step("approve", self.approve),
            Wait("for close", On("Close")),
        )

    def approve(self) -> None:
        self.state = "approved"


def test_a_repair_that_makes_a_waitfor_true_lets_it_pass_now(store: Store) -> None:
    engine = Engine(store, {"approval": Approval})
    engine.start("approval", Approval(), id="a1")
    assert engine.waits("a1")[0].at == "two votes"
    engine.set_data("a1", {"votes": 1}, actor="ana")  # still false: it waits on
    assert engine.get("a1").status is RunStatus.WAITING
    assert engine.waits("a1")[0].at == "two votes"
    engine.set_data("a1", {"votes": 2}, actor="ana", reason="the second vote came by mail")
    inst = engine.get("a1")  # nothing else would ever wake it: it ran on at once
    assert inst.data.state == "approved" and engine.waits("a1")[0].at == "for close"
    kinds = [h.kind for h in engine.history("a1")]
    assert kinds[-2:] == [HistoryKind.DATA_SET, HistoryKind.STEP]  # committed, then the step
