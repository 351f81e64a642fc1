"""What users send (event payloads, start data): structured strictly, and limited in depth.

The same hooks as stored data (:mod:`gorch.serde._codec`), with two differences: a record
refuses keys it does not have (a misspelt optional field must not vanish), and nesting deeper
than :data:`~gorch.limits.MAX_DEPTH` is refused before anything is built.
"""

from __future__ import annotations

from typing import Any, TypeVar

from gorch.errors import InputError
from gorch.limits import MAX_DEPTH
from gorch.serde._codec import converter
from gorch.serde._records import STRICT_INPUT
from gorch.serde._types import is_record

T = TypeVar("T")


def structure_input(value: Any, cls: Any) -> Any:
    """Build a ``cls`` from data a user sent (an event payload, start data): strictly.

    The same hooks as :func:`~gorch.serde.structure` (including those registered on
    :data:`~gorch.serde.converter`), except that a record refuses keys it does not have (a
    misspelt optional field must not vanish) and that nesting deeper than :data:`MAX_DEPTH` is
    refused.

    Raises:
        InputError: the value nests deeper than :data:`MAX_DEPTH` levels.
        Exception: cattrs' errors on a mismatch, as :func:`~gorch.serde.structure`;
            :func:`~gorch.serde.error_details` turns either into lines such as
            ``unknown field; did you mean 'qty'? @ $.qtty``.
    """
    check_depth(value, "value")
    token = STRICT_INPUT.set(True)
    try:
        return converter.structure(value, cls)
    finally:
        STRICT_INPUT.reset(token)


def structure_start(value: Any, cls: type[T]) -> T:
    """The workflow object to start ``cls`` from, built from data a user sent (``None``: no
    data). No data means the class's defaults: ``{}`` for a record, so that a class without
    defaults is refused naming each required field instead of failing in ``cls()``.

    Raises:
        As :func:`structure_input`.
    """
    if value is None and not is_record(cls):
        return cls()
    return structure_input({} if value is None else value, cls)  # type: ignore[no-any-return]


_NESTS = (dict, list, tuple)  # (a tuple of types: isinstance is 3x faster than with dict | list)


def check_depth(value: Any, what: str = "payload") -> None:
    """Refuse a value that nests arrays and objects more than :data:`MAX_DEPTH` levels deep.

    A scalar is 0 levels deep, ``[]`` and ``{}`` are 1, ``{"a": [1]}`` is 2. Iterative: a value
    of any depth is measured without recursion.

    Raises:
        InputError: ``the payload is nested 300 levels deep; at most 64 levels are accepted``
            (``what`` names the value), with that sentence in ``.details``.
    """
    if not isinstance(value, _NESTS):
        return
    deepest, level = 0, [value]
    while level:  # one level of nesting per turn: no recursion, whatever the depth
        deepest += 1
        below = []
        for node in level:
            for child in node.values() if isinstance(node, dict) else node:
                if isinstance(child, _NESTS):
                    below.append(child)  # noqa: PERF401 - the plain loop is faster here
        level = below
    if deepest > MAX_DEPTH:
        detail = f"nested {deepest} levels deep; at most {MAX_DEPTH} levels are accepted"
        raise InputError(f"the {what} is {detail}", details=[detail])
