"""Event handlers: typed payloads through cattrs, bad payloads, Handler objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest

from gorch import (
    CallbackRequest,
    Handler,
    HandlerError,
    InputError,
    On,
    S,
    Timeout,
    Wait,
    dumps,
    handle_callback,
    new_state,
    resume,
)


@dataclass
class Pizza:
    name: str
    qty: int = 1


@attrs.define
class Payment:
    amount: float
    at: datetime


@dataclass
class Shop:
    cart: list[Pizza] = field(default_factory=list)
    seen: list[Any] = field(default_factory=list)

    def definition(self) -> Any:
        return S(
            Wait(
                "for input",
                On("AddToCart", self.add),
                On("AddMany", self.add_many),
                On("Pay", self.pay),
                On("Raw", self.raw),
                On("Ping", self.ping),
                On("Note", self.note),
                On("Lambda", lambda x: x * 2),
                On("Callable", Doubler()),
                On("Nothing"),
                On("Broken", self.broken),
            )
        )

    def add(self, p: Pizza) -> int:
        self.cart.append(p)
        return len(self.cart)

    def add_many(self, ps: list[Pizza]) -> int:
        self.cart.extend(ps)
        return len(self.cart)

    def pay(self, payment: Payment) -> str:
        self.seen.append(payment)
        return payment.at.isoformat()

    def raw(self, payload) -> Any:  # type: ignore[no-untyped-def]  # unannotated on purpose
        self.seen.append(payload)
        return payload

    def ping(self) -> str:
        return "pong"

    def note(self, text: str) -> str:
        return text.upper()

    def broken(self, p: Pizza) -> None:
        raise ValueError("oven on fire")


class Doubler:
    def __call__(self, n: int) -> int:
        return n * 2


def waiting_shop() -> tuple[Shop, Any]:
    wf, state = Shop(), new_state("s-1", "shop")
    resume(wf, state)
    return wf, state


def send(wf: Shop, state: Any, name: str, payload: Any = None) -> object:
    return handle_callback(CallbackRequest(name=name), wf, state, payload)


def test_payload_is_structured_into_the_annotated_dataclass() -> None:
    wf, state = waiting_shop()
    assert send(wf, state, "AddToCart", {"name": "margherita", "qty": 2}) == 1
    assert wf.cart == [Pizza("margherita", 2)]


def test_string_annotations_are_resolved() -> None:
    """This module uses `from __future__ import annotations`: every annotation is a string."""
    wf, state = waiting_shop()
    assert send(wf, state, "AddMany", [{"name": "a"}, {"name": "b", "qty": 3}]) == 2
    assert wf.cart == [Pizza("a", 1), Pizza("b", 3)]


def test_attrs_payload_with_a_datetime() -> None:
    wf, state = waiting_shop()
    out = send(wf, state, "Pay", {"amount": 12.5, "at": "2026-11-25T10:00:00+00:00"})
    assert wf.seen == [Payment(12.5, datetime(2026, 11, 25, 10, tzinfo=UTC))]
    assert out == "2026-11-25T10:00:00+00:00"


def test_an_instance_of_the_annotated_type_is_passed_as_is() -> None:
    wf, state = waiting_shop()
    pizza = Pizza("calzone")
    send(wf, state, "AddToCart", pizza)
    assert wf.cart[0] is pizza


def test_unannotated_parameter_gets_the_payload_as_given() -> None:
    wf, state = waiting_shop()
    payload = {"anything": [1, 2]}
    assert send(wf, state, "Raw", payload) is payload


def test_handler_without_parameters_is_called_with_none() -> None:
    wf, state = waiting_shop()
    assert send(wf, state, "Ping") == "pong"


def test_a_payload_for_an_event_that_takes_none_is_refused_not_dropped() -> None:
    wf, state = waiting_shop()
    before = dumps(state)
    with pytest.raises(InputError) as info:
        send(wf, state, "Ping", {"ignored": True})
    assert "the event takes no payload, but {'ignored': True} was sent" in str(info.value)
    assert info.value.details == ["the event takes no payload @ payload"]
    with pytest.raises(InputError, match="the event takes no payload"):
        send(wf, state, "Nothing", {"x": 1})  # an event without a handler takes none either
    assert dumps(state) == before


def test_scalar_annotation() -> None:
    wf, state = waiting_shop()
    assert send(wf, state, "Note", "hi") == "HI"


def test_lambda_and_callable_object_handlers() -> None:
    wf, state = waiting_shop()
    assert send(wf, state, "Lambda", 21) == 42
    wf, state = waiting_shop()
    assert send(wf, state, "Callable", 4) == 8


def test_event_without_handler_returns_none() -> None:
    wf, state = waiting_shop()
    assert send(wf, state, "Nothing") is None


@pytest.mark.parametrize(
    ("event", "payload", "fragment"),
    [
        ("AddToCart", {"name": "margherita", "qty": "two"}, "payload.qty"),
        ("AddToCart", {"qty": 2}, "payload.name"),
        ("AddToCart", None, "it needs a payload, but none was sent"),
        ("AddToCart", "margherita", "it does not fit Pizza"),
        ("AddMany", [{"name": "a"}, {"name": "b", "qty": []}], "does not fit list[Pizza]: "),
        ("Pay", {"amount": 1.0, "at": "yesterday"}, "payload.at"),
    ],
)
def test_bad_payload_is_an_input_error_and_changes_nothing(
    event: str, payload: Any, fragment: str
) -> None:
    wf, state = waiting_shop()
    before_state, before_data = dumps(state), dumps(wf)
    with pytest.raises(InputError) as info:
        send(wf, state, event, payload)
    err = info.value
    assert fragment in str(err) or any(fragment in d for d in err.details), (str(err), err.details)
    assert err.event == event and err.workflow_id == "s-1"
    assert "Send a JSON value shaped like" in str(err)
    assert dumps(state) == before_state and dumps(wf) == before_data


def test_handler_error_chains_the_cause_and_changes_nothing() -> None:
    wf, state = waiting_shop()
    before = dumps(state)
    with pytest.raises(HandlerError) as info:
        send(wf, state, "Broken", {"name": "x"})
    assert isinstance(info.value.__cause__, ValueError)
    assert "oven on fire" in str(info.value)
    assert info.value.event == "Broken"
    assert dumps(state) == before


class Webhook:
    """A Handler object: it receives the stored request and the raw payload."""

    type = "webhook"

    def __init__(self) -> None:
        self.requests: list[CallbackRequest] = []

    def setup(self, req: CallbackRequest) -> str:
        return f"https://hooks.invalid/{req.workflow_id}/{req.thread_id}/{req.pc}"

    def handle(self, req: CallbackRequest, input: Any) -> object:
        self.requests.append(req)
        return {"got": input, "url": req.setup_data}

    def teardown(self, req: CallbackRequest, handled: bool) -> None:
        pass


def test_handler_objects_get_the_stored_request_and_raw_input() -> None:
    hook = Webhook()
    assert isinstance(hook, Handler)

    class Flow:
        def definition(self) -> Any:
            return S(Wait("hook", On("Hook", hook), Timeout("give up", 60)))

    wf, state = Flow(), new_state("f-1", "flow")
    resume(wf, state)
    event = state.threads[0].wait_events[0]
    assert event.type == "webhook"
    out = handle_callback(CallbackRequest(name="Hook"), wf, state, {"raw": True})
    assert out == {"got": {"raw": True}, "url": f"https://hooks.invalid/f-1/_main_/{state.pc - 1}"}
    assert hook.requests[0] is event.req
