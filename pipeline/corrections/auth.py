"""Who may call the corrections service: bearer tokens, each naming an official and a role.

Roles, each allowed what the ones before it are: `viewer` (read a match and its
corrections), `editor` (correct a score while the match is not over), `admin` (also after
full time, and revoke a correction). The admin's token is the stack's admin token (the
file `status --json` names as `admin_token_file`); the others are in the tokens file
(`corrections_tokens_file`), both made by `gameday up`, mode 0600:

    {"tokens": [{"name": "viewer", "role": "viewer", "token": "..."},
                {"name": "editor", "role": "editor", "token": "..."}]}

More officials are more entries; `name` is recorded with every correction they make.
A presented token is compared with every known token in constant time.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, cast, get_args

from pipeline.auth import read_token

Role = Literal["viewer", "editor", "admin"]
ROLES: Final[tuple[Role, ...]] = get_args(Role)
RANK: Final = {role: rank for rank, role in enumerate(ROLES)}
MADE_ROLES: Final[tuple[Role, ...]] = ("viewer", "editor")
"""The roles `gameday up` makes a token for in the tokens file (admin has the admin token)."""


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: Role

    def may(self, needed: Role) -> bool:
        return RANK[self.role] >= RANK[needed]


class Tokens:
    def __init__(self, entries: dict[str, Principal]) -> None:
        if any(not token for token in entries):
            raise ValueError("an empty token is never valid")
        self._entries = [(token.encode(), who) for token, who in entries.items()]

    @classmethod
    def load(cls, *, admin_token_file: Path, tokens_file: Path) -> Tokens:
        """The admin token plus every entry of the tokens file (refused when others can
        read it, or when an entry is malformed, naming the entry)."""
        entries = {read_token(admin_token_file): Principal("admin", "admin")}
        for i, raw in enumerate(_entries(tokens_file)):
            where = f"{tokens_file}: tokens[{i}]"
            if not isinstance(raw, dict) or set(raw) != {"name", "role", "token"}:
                raise ValueError(f"{where} must be {{name, role, token}}")
            name, role, token = raw["name"], raw["role"], raw["token"]
            if role not in ROLES:
                raise ValueError(f"{where}: role must be one of {list(ROLES)}, got {role!r}")
            if not (isinstance(name, str) and name and isinstance(token, str) and token):
                raise ValueError(f"{where}: name and token must be non-empty strings")
            entries[token] = Principal(name, cast(Role, role))
        return cls(entries)

    def who(self, authorization: str | None) -> Principal | None:
        """The official an `authorization` value (`Bearer <token>`) names, or None."""
        scheme, _, given = (authorization or "").partition(" ")
        presented = given.strip().encode()
        if scheme.lower() != "bearer" or not presented:
            return None
        found = None
        for token, principal in self._entries:  # every one compared: no early exit
            if hmac.compare_digest(presented, token):
                found = principal
        return found


def _entries(path: Path) -> list[object]:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ValueError(f"{path} is readable by others (mode {mode & 0o777:o}); chmod 600 it")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("tokens"), list):
        raise ValueError(f'{path}: expected {{"tokens": [...]}}')
    return list(doc["tokens"])


def make_tokens_file(path: Path) -> None:
    """A fresh tokens file (mode 0600, never overwriting one): a token per made role."""
    doc = {
        "tokens": [
            {"name": role, "role": role, "token": secrets.token_urlsafe(32)} for role in MADE_ROLES
        ]
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")


def token_for(role: Role, *, admin_token_file: Path, tokens_file: Path) -> str:
    """The first token of `role` (what the CLI uses when not given a token file)."""
    if role == "admin":
        return read_token(admin_token_file)
    for raw in _entries(tokens_file):
        if isinstance(raw, dict) and raw.get("role") == role and isinstance(raw.get("token"), str):
            return str(raw["token"])
    raise ValueError(f"{tokens_file} has no {role} token")
