"""Run a scripted pizza order from start to finish: ``python -m examples.pizza``.

Every call follows the request-handler pattern a web app would use: load the order's state and
data from JSON files, deliver one event, resume until every thread is blocked, save both back.
(The durable engine with SQLite, timers and a worker arrives with gorch.engine.)
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from examples.pizza.workflow import PizzaOrder
from gorch import (
    CallbackRequest,
    GorchError,
    State,
    dumps,
    handle_callback,
    loads,
    new_state,
    resume,
    waiting_for,
)

SCRIPT: list[tuple[str, str, Any]] = [
    ("Customer", "AddToCart", {"pizza": {"name": "margherita", "size": "large"}}),
    ("Customer", "AddToCart", {"pizza": {"name": "diavola", "qty": 2}}),
    ("Customer", "AddToCart", {"pizza": {"name": 42}}),  # a bad payload: refused, nothing changes
    ("Customer", "SubmitCart", None),
    ("Manager", "ConfirmOrder", {"manager": "Giulia", "amount": 31.5}),
    ("Cook", "StartCooking", {"cook": "Marco"}),
    ("Customer", "ConfirmPayment", {"amount": 31.5, "address": "Via Roma 1"}),
    ("Cook", "Cooked", None),
    ("Delivery", "TakeForDelivery", None),
    ("Delivery", "Delivered", None),
]


class Files:
    """The order's state and data as two JSON files: the smallest durable store there is."""

    def __init__(self, folder: Path, order_id: str) -> None:
        self.state_file = folder / f"{order_id}.state.json"
        self.data_file = folder / f"{order_id}.data.json"

    def load(self) -> tuple[PizzaOrder, State]:
        order = loads(self.data_file.read_text(), PizzaOrder)
        return order, loads(self.state_file.read_text(), State)

    def save(self, order: PizzaOrder, state: State) -> None:
        self.data_file.write_text(dumps(order))
        self.state_file.write_text(dumps(state))


def where(state: State) -> str:
    if state.status.value == "Finished":
        return "finished"
    parts = [f"{t.id} at {t.cur_step!r}" for t in state.threads]
    return "; ".join(parts) + f" — waits for {', '.join(waiting_for(state)) or 'a condition'}"


def run(folder: Path) -> PizzaOrder:
    store = Files(folder, "order-1")
    order, state = PizzaOrder(), new_state("order-1", "pizza")
    resume(order, state)
    store.save(order, state)
    print(f"order-1 started: {where(state)}")

    for role, event, payload in SCRIPT:
        order, state = store.load()
        try:
            out = handle_callback(CallbackRequest(name=event), order, state, payload)
            resume(order, state)
        except GorchError as err:
            print(f"{role:8} {event:16} refused: {err}")
            continue  # nothing was saved: the stored order is as it was
        store.save(order, state)
        shown = f" -> {out}" if out is not None else ""
        print(f"{role:8} {event:16}{shown}; now {where(state)}")

    order, state = store.load()
    print()
    print(f"status: {order.status}; paid {order.paid:.2f} of {order.amount:.2f}")
    print("history: " + " | ".join(order.log))
    print(
        f"files: {store.state_file.name} ({store.state_file.stat().st_size} bytes), "
        f"{store.data_file.name} ({store.data_file.stat().st_size} bytes)"
    )
    return order


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run a scripted pizza order end to end.")
    parser.add_argument("--dir", type=Path, help="folder for the order's JSON files")
    args = parser.parse_args(argv)
    if args.dir:
        args.dir.mkdir(parents=True, exist_ok=True)
        order = run(args.dir)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            order = run(Path(tmp))
    return 0 if order.status == "completed" else 1


if __name__ == "__main__":
    raise SystemExit(main())
