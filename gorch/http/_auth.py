"""Bearer tokens mapped to roles: configuration, not code."""

from __future__ import annotations

import hashlib
import os
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path

from attrs import frozen

__all__ = ["ADMIN", "Auth", "AuthError", "Caller"]

ADMIN = "admin"
"""The default role operator actions need (goto, pause, unpause, cancel, retry)."""


class AuthError(ValueError):
    """A token configuration that cannot be used (the message says what to fix)."""


@frozen
class Caller:
    """Who sent a request: the roles of their token (``everything`` when auth is off)."""

    roles: frozenset[str]
    everything: bool = False

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
        tokens: token (or ``sha256:`` digest) to the roles it holds.
        admin: the role that operator actions need.

    Example::

        auth = Auth({"s3cret-anna": ["Customer"], "s3cret-giulia": ["Manager", "admin"]})
        app = create_app(engine, auth=auth)
    """

    def __init__(self, tokens: Mapping[str, Iterable[str]], *, admin: str = ADMIN) -> None:
        if not isinstance(admin, str) or not admin:
            raise AuthError(f"the admin role must be a non-empty string, not {admin!r}")
        self.admin = admin
        self._roles: dict[str, frozenset[str]] = {}
        for token, roles in tokens.items():
            if not isinstance(token, str) or not token:
                raise AuthError(f"a token must be a non-empty string, not {token!r}")
            if isinstance(roles, str):
                roles = [roles]
            held = frozenset(roles)
            if not held or not all(isinstance(r, str) and r for r in held):
                raise AuthError(
                    f"token {_shown(token)} must hold a list of one or more role names, "
                    f"not {roles!r}"
                )
            if token.startswith("sha256:"):
                digest = token.removeprefix("sha256:").lower()
                if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                    raise AuthError(f"{token[:20]}...: a sha256: digest is 64 hex digits")
            else:
                digest = _digest(token)
            self._roles[digest] = held

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
        roles = self._roles.get(_digest(token.strip()))
        return None if roles is None else Caller(roles)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Auth:
        """Read tokens from a TOML file::

        admin = "admin"            # optional: the role operator actions need

        [tokens]
        "s3cret-anna" = ["Customer"]
        "sha256:9f86d081884c7d65..." = ["Manager", "admin"]
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


def _shown(token: str) -> str:
    return repr(token[:4] + "...") if len(token) > 8 else "(short token)"
