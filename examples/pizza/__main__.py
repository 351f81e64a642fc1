"""The pizza shop, end to end: ``python -m examples.pizza [run|serve]``.

``run`` (the default) plays a scripted order on the durable engine with an embedded SQLite file:
the customer fills the cart, the manager confirms, the cook cooks while the payment arrives in
its own thread, the courier delivers. It prints who sent what and where the order waits after
each event, and ends with the order's history from the store.

``serve`` serves the shop's HTTP API (docs at /docs, the web console at /ui/) with a worker in
the same process, so the 24-hour cart timeout fires; the demo tokens in
``examples/pizza/tokens.toml`` hold one role each.
"""

from __future__ import annotations

import argparse
import uuid
from pathlib import Path
from typing import Any

from examples.pizza import WORKFLOWS
from examples.pizza.workflow import PizzaOrder
from gorch import Engine, GorchError

HERE = Path(__file__).parent
TOKENS = HERE / "tokens.toml"

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


def engine_for(db: Path) -> Engine:
    from gorch.store import SQLStore

    return Engine(SQLStore(f"sqlite:///{db}"), WORKFLOWS)


def where(engine: Engine, order_id: str) -> str:
    """Where the order waits now, thread by thread."""
    inst = engine.get(order_id)
    if inst.status.value in ("finished", "cancelled"):
        return inst.status.value
    parts = [
        f"{w.thread} at {w.at!r} waits for {', '.join(w.events) or 'a condition'}"
        for w in engine.waits(inst)
    ]
    return "; ".join(parts)


def run(db: Path) -> PizzaOrder:
    engine = engine_for(db)
    order_id = f"order-{uuid.uuid4().hex[:8]}"
    try:
        engine.start("pizza", PizzaOrder(), id=order_id)
        print(f"store: {db}")
        print(f"{'Customer':8} starts {order_id}; now {where(engine, order_id)}")
        for role, event, payload in SCRIPT:
            try:
                out = engine.send(order_id, event, payload)
            except GorchError as err:
                print(f"{role:8} {event:16} refused: {err}")
                continue  # nothing was saved: the stored order is as it was
            shown = f" -> {out}" if out is not None else ""
            print(f"{role:8} {event:16}{shown}; now {where(engine, order_id)}")

        order: PizzaOrder = engine.get(order_id).data
        print()
        print(f"status: {order.status}; paid {order.paid:.2f} of {order.amount:.2f}")
        print(f"history of {order_id}:")
        for h in engine.history(order_id):
            what = " ".join(x for x in (h.kind, repr(h.name) if h.name else "") if x)
            thread = f" [{h.thread}]" if h.thread else ""
            print(f"  {h.seq:3} {h.at:%H:%M:%S.%f} {what}{thread}")
        print(f"\nsee it again: gorch --store {db} --workflows examples.pizza:WORKFLOWS "
              f"show {order_id}")  # fmt: skip
        return order
    finally:
        engine.store.close()


def serve(db: Path, host: str, port: int) -> None:
    import uvicorn

    from gorch.http import Auth, create_app

    app = create_app(engine_for(db), auth=Auth.from_file(TOKENS), worker=True, title="Pizza shop")
    print(f"pizza shop: console http://{host}:{port}/ui/, API docs http://{host}:{port}/docs")
    print(f"store {db}; tokens in {TOKENS}")
    uvicorn.run(app, host=host, port=port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.pizza", description=__doc__)
    parser.add_argument("mode", nargs="?", choices=["run", "serve"], default="run")
    parser.add_argument("--db", type=Path, default=Path("pizza.db"), help="SQLite file")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    if args.mode == "serve":
        serve(args.db, args.host, args.port)
        return 0
    return 0 if run(args.db).status == "completed" else 1


if __name__ == "__main__":
    raise SystemExit(main())
