"""Scrubbing erased personal data out of stored JSON and text (for ``Engine.delete_data``).

A :class:`Scrubber` knows the erased fields' JSON keys (the last name of each declared path,
with the field's neutral value) and the erased values (the texts they held). It rewrites a
document in two ways:

- (a) the value under such a key, anywhere in the document, becomes the neutral value (so the
  ``started`` entry's copy of the data, or an event payload ``{"email": ...}``, is reset);
- (b) a text that is one of the erased values becomes :data:`ERASED`, and one that contains an
  erased value of at least :data:`MIN_PART` characters has each occurrence replaced by it (an
  answer that echoes a name, ``"Thank you, Ana Smith"``); object keys too.

Before rewriting, :meth:`Scrubber.learn` collects the values found under those keys in every
document, so that a value the data no longer holds (an email changed since) is erased as well.
Only texts are erased by (b): a number or a boolean is no personal datum on its own.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Mapping
from typing import Any, overload

import orjson

ERASED = "<erased>"
"""What an erased text becomes."""

MIN_PART = 3
"""The shortest erased value that is also replaced inside longer texts (a shorter one only
where a whole text equals it)."""


class Scrubber:
    """Rewrites documents so that no erased value is left in them (see the module docstring).

    Args:
        keys: JSON key to the neutral value (as JSON) a value under it becomes.
        values: texts to erase.
    """

    def __init__(self, keys: Mapping[str, Any], values: Iterable[str] = ()) -> None:
        self.keys = dict(keys)
        self.values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        for v in values:
            self.add(v)

    def add(self, value: Any) -> None:
        """Erase every text in ``value`` (a JSON value) from now on."""
        for text in _texts(value):
            if text and text != ERASED:
                self.values.add(text)
        self._pattern = None

    def learn(self, doc: Any) -> None:
        """Erase the texts found under the erased keys anywhere in ``doc``."""
        if isinstance(doc, dict):
            for k, v in doc.items():
                if k in self.keys:
                    self.add(v)
                else:
                    self.learn(v)
        elif isinstance(doc, list):
            for v in doc:
                self.learn(v)

    def learn_text(self, text: str | None) -> None:
        """:meth:`learn` of a stored JSON text (one that does not parse teaches nothing)."""
        if text is not None:
            with contextlib.suppress(orjson.JSONDecodeError):
                self.learn(orjson.loads(text))

    @overload
    def json_text(self, text: str) -> str: ...
    @overload
    def json_text(self, text: None) -> None: ...
    def json_text(self, text: str | None) -> str | None:
        """The stored JSON ``text`` scrubbed (a text that does not parse: as :meth:`text`)."""
        if text is None:
            return None
        try:
            doc = orjson.loads(text)
        except orjson.JSONDecodeError:
            return self.text(text)
        scrubbed = self.doc(doc)
        return text if scrubbed == doc else orjson.dumps(scrubbed).decode()

    def doc(self, doc: Any) -> Any:
        """A JSON value scrubbed by (a) and (b)."""
        if isinstance(doc, dict):
            out: dict[str, Any] = {}
            for k, v in doc.items():
                v = self.keys[k] if k in self.keys else self.doc(v)
                name = self.text(k)
                while name in out:  # two keys erased to one
                    name += "'"
                out[name] = v
            return out
        if isinstance(doc, list):
            return [self.doc(v) for v in doc]
        if isinstance(doc, str):
            return self.text(doc)
        return doc

    @overload
    def text(self, text: str) -> str: ...
    @overload
    def text(self, text: None) -> None: ...
    def text(self, text: str | None) -> str | None:
        """A free text (an error, a reason) with the erased values replaced (b)."""
        if not text or not self.values:
            return text
        if text in self.values:
            return ERASED
        pattern = self._pattern
        if pattern is None:
            long = sorted((v for v in self.values if len(v) >= MIN_PART), key=len, reverse=True)
            if not long:
                return text
            pattern = self._pattern = re.compile("|".join(map(re.escape, long)))
        return pattern.sub(ERASED, text)


def _texts(value: Any) -> Iterable[str]:
    """Every text of a JSON value: itself, its items, the values of its objects (not their
    keys: those of a record are its field names)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _texts(v)
    elif isinstance(value, list):
        for v in value:
            yield from _texts(v)
