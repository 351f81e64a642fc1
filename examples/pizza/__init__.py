"""The pizza shop: gorchestrate's example app, ported to gorch.

``python -m examples.pizza`` runs a scripted order end to end on a SQLite file;
``python -m examples.pizza serve`` serves the shop over HTTP with a worker in the same process.
"""

from examples.pizza.workflow import (
    AddToCart,
    ConfirmOrder,
    ConfirmPayment,
    Pizza,
    PizzaOrder,
    StartCooking,
)

WORKFLOWS: dict[str, type] = {"pizza": PizzaOrder}
"""The shop's registered workflows (for ``gorch --workflows examples.pizza:WORKFLOWS``)."""

__all__ = [
    "WORKFLOWS",
    "AddToCart",
    "ConfirmOrder",
    "ConfirmPayment",
    "Pizza",
    "PizzaOrder",
    "StartCooking",
]
