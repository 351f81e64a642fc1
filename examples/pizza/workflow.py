"""The pizza order workflow: a cart, a manager's confirmation, payment in parallel, the kitchen.

Each event has a typed payload class: gorch structures the JSON an event arrives with into it
(and refuses a payload of the wrong shape with an ``InputError``, changing nothing).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ClassVar

from gorch import For, Go, If, On, Return, S, Step, Timeout, Wait, WaitFor

CART_TIMEOUT = timedelta(hours=24)

# Who may send which event (gorch.http lets only a token holding the role send it).
CUSTOMER, MANAGER, COOK, DELIVERY = "Customer", "Manager", "Cook", "Delivery"


@dataclass
class Pizza:
    name: str
    size: str = "medium"
    qty: int = 1


@dataclass
class AddToCart:
    pizza: Pizza


@dataclass
class ConfirmOrder:
    manager: str
    amount: float


@dataclass
class ConfirmPayment:
    amount: float
    address: str


@dataclass
class StartCooking:
    cook: str


@dataclass
class PizzaOrder:
    """A pizza order: a cart, the manager's confirmation, payment at any time, the kitchen.

    The order's data is everything the workflow knows, saved as JSON after every call.
    """

    start_roles: ClassVar[tuple[str, ...]] = (CUSTOMER,)
    # Erased by Engine.delete_data (gorch delete-data) on a customer's request.
    personal_data: ClassVar[tuple[str, ...]] = ("address",)

    cart: list[Pizza] = field(default_factory=list)
    status: str = ""
    amount: float = 0.0
    paid: float = 0.0
    address: str = ""
    manager: str = ""
    cook: str = ""
    log: list[str] = field(default_factory=list)

    def definition(self) -> Any:
        return S(
            Step("setup", self.setup),
            For("cart is open", self.status == "cart",
                Wait("for the cart",
                    On("AddToCart", self.add_to_cart, roles=CUSTOMER),
                    On("EmptyCart", self.empty_cart, roles=CUSTOMER),
                    On("SubmitCart", self.submit_cart, roles=CUSTOMER),
                    Timeout("cart timed out", CART_TIMEOUT,
                        Step("expire order", self.expire),
                        Return(),
                    ),
                ),
            ),
            Wait("for the manager", On("ConfirmOrder", self.confirm_order, roles=MANAGER)),
            Go("payment",
                Wait("for payment", On("ConfirmPayment", self.confirm_payment, roles=CUSTOMER)),
            ),
            Wait("for a cook", On("StartCooking", self.start_cooking, roles=COOK)),
            Wait("for the oven", On("Cooked", self.cooked, roles=COOK)),
            Wait("for a courier", On("TakeForDelivery", self.take_for_delivery, roles=DELIVERY)),
            Wait("for delivery", On("Delivered", self.delivered, roles=DELIVERY)),
            WaitFor("payment received", self.paid >= self.amount > 0),
            If(self.paid > self.amount, "overpaid",
                Step("refund the difference", self.refund),
            ),
            Step("complete", self.complete),
        )  # fmt: skip

    # Steps and handlers: plain methods that change the order's data.

    def setup(self) -> None:
        self.status = "cart"
        self.log.append("order opened")

    def add_to_cart(self, event: AddToCart) -> int:
        """Put a pizza in the cart; the answer is how many pizzas it holds."""
        self.cart.append(event.pizza)
        return len(self.cart)

    def empty_cart(self) -> None:
        """Take every pizza out of the cart."""
        self.cart.clear()

    def submit_cart(self) -> str:
        """Send the cart to the shop (refused while it is empty)."""
        if not self.cart:
            raise ValueError("the cart is empty: add a pizza before submitting")
        self.status = "submitted"
        return self.status

    def expire(self) -> None:
        self.status = "expired"
        self.log.append("cart timed out")

    def confirm_order(self, event: ConfirmOrder) -> None:
        """The manager accepts the order and sets the amount to pay."""
        self.manager, self.amount = event.manager, event.amount
        self.status = "confirmed"

    def confirm_payment(self, event: ConfirmPayment) -> None:
        """The customer pays (any time after the order is confirmed) and gives the address."""
        self.paid += event.amount
        self.address = event.address

    def start_cooking(self, event: StartCooking) -> None:
        """A cook takes the order."""
        self.cook = event.cook
        self.status = "cooking"

    def cooked(self) -> None:
        """The pizzas are out of the oven."""
        self.status = "cooked"

    def take_for_delivery(self) -> None:
        """A courier takes the order."""
        self.status = "delivering"

    def delivered(self) -> None:
        """The courier handed the order over."""
        self.status = "delivered"

    def refund(self) -> None:
        self.log.append(f"refund {self.paid - self.amount:.2f}")

    def complete(self) -> None:
        self.status = "completed"
        self.log.append("order completed")
