"""Bearer tokens mapped to roles and a name: configuration, not code.

A token's name is who the history says made an operator's change (``HistoryEntry.actor``); a
token without one is named by a short prefix of its digest (``"token:1a2b3c4d"``), never by
the secret itself.
"""

from __future__ import annotations

import hashlib
import os
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from attrs import frozen

from gorch.limits import MAX_TEXT, is_text

__all__ = ["ADMIN", "Auth", "AuthError", "Caller"]

ADMIN = "admin"
"""The default role operator actions need (goto, pause, unpause, cancel, retry)."""


class AuthError(ValueError):
    """A token configuration that cannot be used (the message says what to fix)."""


@frozen
class Caller:
    """Who sent a request: the roles of their token (``everything`` when auth is off) and its
    name (None when auth is off), which operator actions record as their actor."""

    roles: frozenset[str]
    everything: bool = False
    name: str | None = None

    def holds(self, roles: Iterable[str]) -> bool:
        """Whether the caller holds one of ``roles`` (an empty ``roles``: anyone may)."""
        wanted = tuple(roles)
        return self.everything or not wanted or not self.roles.isdisjoint(wanted)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Auth:
    """Which bearer token holds which roles.

    Tokens are kept only as SHA-256 digests. In a configuration a token is given either as
    itself or as ``"sha256:<hex digest>"`` (so that the file holds no secret): make the digest
    with ``python -c "import hashlib; print(hashlib.sha256(b'TOKEN').hexdigest())"``.

    Args:
        tokens: token (or ``sha256:`` digest) to the roles it holds: a list of role names
            (or one name), or a mapping ``{"roles": [...], "name": "giulia"}`` that also names
            who holds it (the actor of the operator actions made with it; without a name,
            ``"token:"`` and the first 8 hex digits of its digest).
        admin: the role that operator actions need.

    Example::

        auth = Auth({
            "s3cret-anna": ["Customer"],
            "s3cret-giulia": {"roles": ["Manager", "admin"], "name": "giulia"},
        })
        app = create_app(engine, auth=auth)
    """

    def __init__(
        self, tokens: Mapping[str, Iterable[str] | Mapping[str, Any]], *, admin: str = ADMIN
    ) -> None:
        if not isinstance(admin, str) or not admin:
            raise AuthError(f"the admin role must be a non-empty string, not {admin!r}")
        self.admin = admin
        self._roles: dict[str, frozenset[str]] = {}
        self._names: dict[str, str] = {}
        for token, held in tokens.items():
            if not isinstance(token, str) or not token:
                raise AuthError(f"a token must be a non-empty string, not {token!r}")
            digest = _digest_of(token)
            self._roles[digest], name = _holder(token, held)
            self._names[digest] = name or f"token:{digest[:8]}"

    def __repr__(self) -> str:
        return f"Auth({len(self._roles)} tokens, admin={self.admin!r})"

    @property
    def roles(self) -> frozenset[str]:
        """Every role some token holds."""
        return frozenset().union(*self._roles.values())

    def caller(self, authorization: str | None) -> Caller | None:
        """The caller an ``Authorization`` header stands for, or None if it names no token."""
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        digest = _digest(token.strip())
        roles = self._roles.get(digest)
        return None if roles is None else Caller(roles, name=self._names[digest])

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Auth:
        """Read tokens from a TOML file::

        admin = "admin"            # optional: the role operator actions need

        [tokens]
        "s3cret-anna" = ["Customer"]
        "sha256:9f86d081884c7d65..." = { roles = ["Manager", "admin"], name = "giulia" }
        """
        p = Path(path)
        try:
            doc = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise AuthError(f"token file {str(p)!r} does not exist") from None
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise AuthError(f"cannot read token file {str(p)!r}: {exc}") from None
        tokens = doc.get("tokens")
        if not isinstance(tokens, dict) or not tokens:
            raise AuthError(
                f"token file {str(p)!r} needs a [tokens] table mapping each token to its "
                f'roles, e.g. "s3cret" = ["Customer"]'
            )
        return cls(tokens, admin=doc.get("admin", ADMIN))


def _digest_of(token: str) -> str:
    """The digest a configured token (itself, or ``sha256:<hex>``) is kept as."""
    if not token.startswith("sha256:"):
        return _digest(token)
    digest = token.removeprefix("sha256:").lower()
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise AuthError(f"{token[:20]}...: a sha256: digest is 64 hex digits")
    return digest


def _holder(token: str, held: Any) -> tuple[frozenset[str], str | None]:
    """The roles and the name a token's configuration gives: a list of roles (or one role),
    or a mapping with ``roles`` and an optional ``name``."""
    name = None
    if isinstance(held, Mapping):
        unknown = sorted(map(str, set(held) - {"roles", "name"}))
        if unknown or "roles" not in held:
            raise AuthError(
                f"token {_shown(token)} is a table of roles (a list) and an optional name, "
                f'e.g. {{ roles = ["admin"], name = "ana" }}; not {dict(held)!r}'
            )
        held, name = held["roles"], held.get("name")
        if name is not None and not is_text(name):
            raise AuthError(
                f"token {_shown(token)}: its name must be a text of 1 to {MAX_TEXT} characters, "
                f"not {name!r}"
            )
    roles = [held] if isinstance(held, str) else held
    ok = isinstance(roles, Iterable) and not isinstance(roles, Mapping)
    listed = list(roles) if ok else []
    found = frozenset(listed) if all(isinstance(r, str) and r for r in listed) else frozenset()
    if not found:
        raise AuthError(
            f"token {_shown(token)} must hold a list of one or more role names, not {held!r}"
        )
    return found, name


def _shown(token: str) -> str:
    return repr(token[:4] + "...") if len(token) > 8 else "(short token)"
