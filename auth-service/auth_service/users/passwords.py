"""Password hashing (argon2id) off the event loop, and the password rules.

argon2 is memory-hard by design, so it runs in a bounded thread pool (argon2-cffi releases
the GIL while hashing): the event loop keeps serving, and at most ``threads`` hashes hold
their memory at once.
"""
from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from argon2 import PasswordHasher as Argon2Hasher
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from shared.cpu import threads_per_worker

from ..config import Settings

T = TypeVar("T")

PASSWORD_MIN_LENGTH = 10
PASSWORD_MAX_LENGTH = 128
COMMON_PASSWORDS_FILE = Path(__file__).with_name("common_passwords.txt")


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    lines = COMMON_PASSWORDS_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().lower() for line in lines if line.strip() and not line.startswith("#"))


def password_problem(password: str) -> str | None:
    """Why ``password`` is not acceptable as a new password, or None."""
    if len(password) < PASSWORD_MIN_LENGTH:
        return f"must be at least {PASSWORD_MIN_LENGTH} characters"
    if len(password) > PASSWORD_MAX_LENGTH:
        return f"must be at most {PASSWORD_MAX_LENGTH} characters"
    if password.strip().lower() in common_passwords():
        return "is too common; choose a less guessable password"
    return None


def argon2_hasher(settings: Settings) -> Argon2Hasher:
    """argon2id with the configured parameters: the service's hasher, and the benchmarks' floor."""
    return Argon2Hasher(time_cost=settings.argon2_time_cost, memory_cost=settings.argon2_memory_kib,
                        parallelism=settings.argon2_parallelism, type=Type.ID)


def hashing_threads(settings: Settings) -> int:
    """Threads hashing in one worker process: bounded by the container's CPU limit (cgroup),
    not the node's cores, shared among the workers."""
    return settings.argon2_threads or threads_per_worker(settings.workers)


class PasswordHasher:
    def __init__(self, settings: Settings):
        self.hasher = argon2_hasher(settings)
        self.executor = ThreadPoolExecutor(max_workers=hashing_threads(settings), thread_name_prefix="argon2")
        self._dummy_hash: str | None = None

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def start(self) -> None:
        # Unknown emails are verified against this hash, so they cost what a wrong password costs.
        self._dummy_hash = await self.hash(secrets.token_urlsafe(24))

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)

    async def hash(self, password: str) -> str:
        return await self._run(self.hasher.hash, password)

    def _verify(self, stored: str, password: str) -> bool:
        try:
            return self.hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    async def verify(self, stored: str | None, password: str) -> bool:
        """True when ``password`` matches; with ``stored`` None the same work is done and False returned."""
        if stored is None:
            await self._run(self._verify, self._dummy_hash, password)
            return False
        return await self._run(self._verify, stored, password)

    def needs_rehash(self, stored: str) -> bool:
        try:
            return self.hasher.check_needs_rehash(stored)
        except InvalidHashError:
            return True
