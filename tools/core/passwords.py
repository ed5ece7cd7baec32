"""Password hashing with argon2 (argon2-cffi), bounded: at most a few hashes at once.

Each argon2 hash takes 64 MiB and a core for a moment, on purpose. Unbounded, 40 concurrent
sign-in attempts took 40 worker threads and 1.9 GB. Here hashes run on worker threads through
one capacity limiter per event loop (`limit_concurrent_hashes`, default 2): the rest wait their
turn as cheap coroutines, up to `MAX_WAITING_HASHES`; past that a request is refused as `busy`.
"""

from __future__ import annotations

import asyncio
import secrets
import weakref
from collections.abc import Callable
from typing import TypeVar

import anyio.to_thread
from anyio import CapacityLimiter
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from tools.core.errors import Busy

__all__ = [
    "DEFAULT_CONCURRENT_HASHES",
    "MAX_WAITING_HASHES",
    "generate_password",
    "hash_generated_password",
    "hash_password",
    "limit_concurrent_hashes",
    "verify_password",
]

DEFAULT_CONCURRENT_HASHES = 2
MAX_WAITING_HASHES = 200

_hasher = PasswordHasher()
_generated_hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
"""For passwords we generated (`generate_password`, 120 random bits): a slow hash protects a
guessable password, and no guess finds one of these, so argon2 at its smallest cost is enough.
`verify_password` checks them like any other (argon2 keeps the parameters in the hash)."""
_concurrent_hashes = DEFAULT_CONCURRENT_HASHES
_limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, CapacityLimiter] = weakref.WeakKeyDictionary()

T = TypeVar("T")


def limit_concurrent_hashes(count: int) -> None:
    """At most `count` password hashes run at once (per event loop, i.e. per server process)."""
    global _concurrent_hashes
    if count < 1:
        raise ValueError("at least one password hash must be able to run")
    _concurrent_hashes = count
    for limiter in _limiters.values():
        limiter.total_tokens = count


def _limiter() -> CapacityLimiter:
    loop = asyncio.get_running_loop()
    limiter = _limiters.get(loop)
    if limiter is None:
        limiter = _limiters[loop] = CapacityLimiter(_concurrent_hashes)
    return limiter


async def _bounded(work: Callable[[], T]) -> T:
    limiter = _limiter()
    if limiter.statistics().tasks_waiting >= MAX_WAITING_HASHES:
        raise Busy(retry_after=1)
    return await anyio.to_thread.run_sync(work, limiter=limiter)


async def hash_password(password: str) -> str:
    return await _bounded(lambda: _hasher.hash(password))


async def hash_generated_password(password: str) -> str:
    """The hash of a password `generate_password` made: a fraction of a millisecond, not 64 MiB and
    a core for a moment, so registering many students without passwords stays cheap."""
    return _generated_hasher.hash(password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        # Spend the same time as a real check, so timing does not tell which emails exist.
        await _bounded(lambda: _hasher.hash(password))
        return False

    def check() -> bool:
        try:
            return _hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    return await _bounded(check)


def generate_password() -> str:
    """A random password of 20 url-safe characters, for students registered without one."""
    return secrets.token_urlsafe(15)
