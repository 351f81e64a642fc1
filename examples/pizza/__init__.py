"""The pizza shop: gorchestrate's example app, ported to gorch."""

from examples.pizza.workflow import (
    AddToCart,
    ConfirmOrder,
    ConfirmPayment,
    Pizza,
    PizzaOrder,
    StartCooking,
)

__all__ = ["AddToCart", "ConfirmOrder", "ConfirmPayment", "Pizza", "PizzaOrder", "StartCooking"]
