"""JSON through one cattrs converter, for states and for workflow classes alike.

No pickle anywhere: what gorch stores is JSON that other languages can read and that is safe to
load. The converter is cattrs' preconfigured orjson converter with hooks that make every type it
writes read back to an equal value, and that refuse input of the wrong shape:

- scalars are strict: a ``str`` field takes only a JSON string, an ``int`` field only an integer
  (not ``true``), a ``float`` field an integer or a float; non-finite floats are written as
  ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` (JSON has no such numbers);
- ``Decimal``, ``UUID`` as text; ``datetime``, ``date`` and ``time`` as ISO-8601 text (a naive
  datetime stays naive; an aware one keeps its UTC offset, as a fixed-offset zone: equal under
  ``==``); subclasses such as freezegun's ``FakeDatetime`` are written as the plain type;
- ``timedelta`` as seconds (a duration that float seconds cannot hold exactly is refused);
- enums and ``Literal`` by value; sets, frozensets and tuples as arrays; records (dataclasses,
  attrs classes) only from JSON objects, arrays only from JSON arrays;
- dict keys as their *key text* (JSON object keys are text: ``"42"``, ``"en"``, ``'[1,"a"]'``),
  read back with the key type (:mod:`gorch.serde._shapes` has the rules);
- unions of JSON scalars (``str | int``) by the JSON type, records by cattrs' disambiguation.

:func:`configure` registers all of these rules on a :class:`Converter`, and its docstring lists
them, one line each; :data:`converter` is the one it configured at import.

:func:`loads` ignores keys a record does not have (older rows still load after a field is
removed); :func:`structure_input`, used for what users send (event payloads, start data),
refuses them and limits nesting to :data:`MAX_DEPTH`. :func:`check_type` tells, before anything
is stored, whether a workflow class round-trips. Register hooks for your own types on
:data:`converter`; they apply to stored data and to input alike.

The modules, from the bottom up (each imports only those before it):

- ``_types``: what kind of type a type is, and errors in people's words (no converter);
- ``_scalars``: the hooks for JSON's scalars, numbers and times as text, enums and Literals;
- ``_records``: the hooks for records (strict in input), and the fast path for ``State``;
- ``_shapes``: the hooks for arrays, mappings and their key text, and unions of JSON scalars;
- ``_errors``: cattrs' error tree to ``what @ path`` lines (:func:`error_details`);
- ``_converter``: :class:`Converter` (which hooks are the user's) and :func:`configure`;
- ``_codec``: :data:`converter`, and :func:`dumps`, :func:`loads`, :func:`structure`,
  :func:`unstructure` on it (the hot path);
- ``_input``: :func:`structure_input`, :func:`structure_start`, :func:`check_depth`;
- ``_check``: :func:`check_type`, a walk over a class's field types that mirrors the hooks.

Example:
    >>> from gorch import dumps, loads, new_state, State
    >>> text = dumps(new_state("order-1", "pizza"))
    >>> loads(text, State) == new_state("order-1", "pizza")
    True
"""

from __future__ import annotations

from gorch.limits import MAX_DEPTH
from gorch.serde._check import check_type
from gorch.serde._codec import converter, dumps, loads, structure, unstructure
from gorch.serde._converter import Converter, configure
from gorch.serde._errors import error_details
from gorch.serde._input import check_depth, structure_input, structure_start

__all__ = [
    "MAX_DEPTH",
    "Converter",
    "check_depth",
    "check_type",
    "configure",
    "converter",
    "dumps",
    "error_details",
    "loads",
    "structure",
    "structure_input",
    "structure_start",
    "unstructure",
]
