"""Password hashing with argon2 (argon2-cffi). Hashing runs on a worker thread: it is slow on purpose."""

from __future__ import annotations

import secrets

import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = ["generate_password", "hash_password", "verify_password"]

_hasher = PasswordHasher()


async def hash_password(password: str) -> str:
    return await anyio.to_thread.run_sync(_hasher.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        # Spend the same time as a real check, so timing does not tell which emails exist.
        await anyio.to_thread.run_sync(_hasher.hash, password)
        return False

    def check() -> bool:
        try:
            return _hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    return await anyio.to_thread.run_sync(check)


def generate_password() -> str:
    """A random password of 20 url-safe characters, for students registered without one."""
    return secrets.token_urlsafe(15)
