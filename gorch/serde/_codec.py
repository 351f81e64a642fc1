"""The one converter gorch uses, and the functions on it: dumps, loads, structure, unstructure.

This is the hot path (every checkpoint dumps a state and the workflow's data, every request
loads them): it only calls the converter that :func:`gorch.serde.configure` set up, and turns
any failure into a :class:`~gorch.errors.SerializationError` that says where.
"""

from __future__ import annotations

from typing import Any, TypeVar

import orjson

from gorch.errors import SerializationError
from gorch.serde._converter import Converter, configure
from gorch.serde._errors import error_details
from gorch.serde._types import describe, is_record

T = TypeVar("T")

converter = Converter()
"""The one converter gorch uses for every document it stores or receives."""
configure(converter)

_OPTIONS = orjson.OPT_NON_STR_KEYS


def unstructure(obj: Any) -> Any:
    """Return ``obj`` as plain JSON-ready data (dicts, lists, scalars)."""
    return converter.unstructure(obj)


def structure(data: Any, cls: type[T]) -> T:
    """Build a ``cls`` from plain data; raises cattrs' errors on a mismatch.

    Keys a record does not have are ignored, as :func:`loads` does. For what users send, use
    :func:`~gorch.serde.structure_input`.
    """
    return converter.structure(data, cls)


def dumps(obj: Any) -> str:
    """Serialize a state, a workflow object or any supported value to JSON text.

    Raises:
        SerializationError: a value JSON cannot hold (an int beyond 64 bits, an unregistered
            type, a duration too long to store exactly, nesting deeper than 254 levels).
    """
    try:
        return orjson.dumps(converter.unstructure(obj), option=_OPTIONS).decode()
    except Exception as exc:
        raise SerializationError(
            f"cannot write {type(obj).__name__} as JSON: {type(exc).__name__}: {exc}. Change "
            f"the value, or register an unstructure hook for its type on gorch.serde.converter."
        ) from exc


def loads(text: str | bytes, cls: type[T]) -> T:
    """Parse JSON text into an instance of ``cls`` (a ``State``, a workflow class, ...).

    Keys a record does not have are ignored: a row written before a field was removed loads.

    Raises:
        SerializationError: the text is not JSON, or the document does not fit ``cls``;
            ``.details`` says where (``expected a whole number, got true @ $.threads[0].pc``).
    """
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise SerializationError(
            f"cannot read {cls.__name__}: the text is not valid JSON ({exc})",
            details=[str(exc)],
        ) from exc
    try:
        return converter.structure(data, cls)
    except Exception as exc:
        details = error_details(exc)
        if is_record(cls) and not isinstance(data, dict):
            details = [f"expected an object ({cls.__name__}), got {describe(data)} @ $"]
        raise SerializationError(
            f"cannot read {cls.__name__} from this document: " + "; ".join(details),
            details=details,
        ) from exc
