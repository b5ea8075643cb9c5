"""Rate limits: token buckets kept in process memory, one per key (client address, remote host).

Memory is enough: a limit only has to slow an abuser down, and with several web processes each
one keeps its own buckets (the effective limit is multiplied by the number of processes, which
the README says). Refusals are 429 with Retry-After, so a well-behaved server simply retries.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

MAX_KEYS = 50_000


class RateLimitConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Rate:
    """`count` requests per `period` seconds, in bursts of up to `count`."""

    count: int
    period: float

    @classmethod
    def parse(cls, text: str) -> Rate | None:
        """`"20/60"` is 20 per minute; `"0"` or `"off"` turns the limit off (None)."""
        text = text.strip().lower()
        if text in {"", "0", "off", "none"}:
            return None
        try:
            count, period = text.split("/", 1)
            rate = cls(int(count), float(period))
        except ValueError as exc:
            raise RateLimitConfigError(
                f"rate {text!r} should look like COUNT/SECONDS, e.g. 20/60") from exc
        if rate.count <= 0 or rate.period <= 0:
            raise RateLimitConfigError(f"rate {text!r} must be positive")
        return rate


class RateLimited(Exception):
    def __init__(self, what: str, retry_after: float) -> None:
        self.retry_after = max(1, math.ceil(retry_after))
        super().__init__(f"too many {what}; retry in {self.retry_after} s")


class TokenBucket:
    def __init__(self, rate: Rate, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(rate.count)
        self.per_second = rate.count / rate.period
        self.clock = clock
        self.buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str, cost: float = 1.0) -> float:
        """Spend `cost` tokens of `key`; 0.0 when allowed, else the seconds until it would be."""
        stamp = self.clock()
        tokens, last = self.buckets.get(key, (self.capacity, stamp))
        tokens = min(self.capacity, tokens + (stamp - last) * self.per_second)
        if tokens >= cost:
            self.buckets[key] = (tokens - cost, stamp)
            self._bound()
            return 0.0
        self.buckets[key] = (tokens, stamp)
        return (cost - tokens) / self.per_second

    def refund(self, key: str, cost: float = 1.0) -> None:
        """Gives back tokens taken for something that turned out not to count."""
        if key in self.buckets:
            tokens, last = self.buckets[key]
            self.buckets[key] = (min(self.capacity, tokens + cost), last)

    def _bound(self) -> None:
        if len(self.buckets) <= MAX_KEYS:
            return
        # Forget the buckets idle the longest: a forgotten bucket starts full, which only ever
        # errs on the side of letting a request through.
        oldest = sorted(self.buckets, key=lambda k: self.buckets[k][1])
        for key in oldest[: len(oldest) // 2]:
            del self.buckets[key]


@dataclass(frozen=True)
class Limits:
    inbox_per_address: Rate | None
    inbox_per_host: Rate | None
    login_per_address: Rate | None
    signup_per_address: Rate | None
    # Wrong passwords (every form that checks one), per client address and per account.
    password_per_address: Rate | None = None
    password_per_account: Rate | None = None
    # "Forgot my password" forms per client address, and reset emails per address asked for.
    reset_per_address: Rate | None = None
    reset_per_account: Rate | None = None
    # Sessions stored for visitors who are not signed in (a form's CSRF token), per address.
    sessions_per_address: Rate | None = None

    @classmethod
    def from_env(cls, env: dict[str, str]) -> Limits:
        return cls(
            inbox_per_address=Rate.parse(env.get("NODE_RATE_INBOX_PER_ADDRESS", "3000/60")),
            inbox_per_host=Rate.parse(env.get("NODE_RATE_INBOX_PER_HOST", "3000/60")),
            login_per_address=Rate.parse(env.get("NODE_RATE_LOGIN_PER_ADDRESS", "20/300")),
            signup_per_address=Rate.parse(env.get("NODE_RATE_SIGNUP_PER_ADDRESS", "10/3600")),
            password_per_address=Rate.parse(env.get("NODE_RATE_PASSWORD_PER_ADDRESS", "10/300")),
            password_per_account=Rate.parse(env.get("NODE_RATE_PASSWORD_PER_ACCOUNT", "10/900")),
            reset_per_address=Rate.parse(env.get("NODE_RATE_RESET_PER_ADDRESS", "10/3600")),
            reset_per_account=Rate.parse(env.get("NODE_RATE_RESET_PER_ACCOUNT", "3/3600")),
            sessions_per_address=Rate.parse(env.get("NODE_RATE_SESSIONS_PER_ADDRESS",
                                                    "200/600")),
        )


class Limiter:
    """The buckets of one node process."""

    def __init__(self, limits: Limits, clock: Callable[[], float] = time.monotonic) -> None:
        def bucket(rate: Rate | None) -> TokenBucket | None:
            return TokenBucket(rate, clock) if rate else None

        self.inbox_address = bucket(limits.inbox_per_address)
        self.inbox_host = bucket(limits.inbox_per_host)
        self.login_address = bucket(limits.login_per_address)
        self.signup_address = bucket(limits.signup_per_address)
        self.password_address = bucket(limits.password_per_address)
        self.password_account = bucket(limits.password_per_account)
        self.reset_address = bucket(limits.reset_per_address)
        self.reset_account = bucket(limits.reset_per_account)
        self.sessions_address = bucket(limits.sessions_per_address)

    @staticmethod
    def _check(bucket: TokenBucket | None, key: str, what: str) -> None:
        if bucket is None:
            return
        wait = bucket.take(key)
        if wait > 0:
            raise RateLimited(what, wait)

    def check_inbox_address(self, address: str) -> None:
        self._check(self.inbox_address, address, "inbox deliveries from this address")

    def check_inbox_host(self, host: str) -> None:
        self._check(self.inbox_host, host, "activities from this server")

    def check_login(self, address: str) -> None:
        self._check(self.login_address, address, "sign-in attempts from this address")

    def check_signup(self, address: str) -> None:
        self._check(self.signup_address, address, "sign-ups from this address")

    def take_password_attempt(self, address: str, account: str) -> Callable[[], None]:
        """Spends one password attempt of the address and one of the account, before the
        password is checked (so that attempts made at once cannot all slip through); returns
        the refund to call when the password was right, so that only wrong ones count."""
        self._check(self.password_address, address, "password attempts from this address")
        try:
            self._check(self.password_account, account, "password attempts for this account")
        except RateLimited:
            if self.password_address is not None:
                self.password_address.refund(address)
            raise

        def refund() -> None:
            for bucket, key in ((self.password_address, address),
                                (self.password_account, account)):
                if bucket is not None:
                    bucket.refund(key)
        return refund

    def check_reset(self, address: str) -> None:
        self._check(self.reset_address, address, "password reset requests from this address")

    def may_email_reset(self, account: str) -> bool:
        """Whether one more reset email may go to this address (no answer ever says no)."""
        return self.reset_account is None or self.reset_account.take(account) == 0.0

    def may_start_session(self, address: str) -> bool:
        return self.sessions_address is None or self.sessions_address.take(address) == 0.0


def limiter_of(holder: object) -> Limiter:
    """The limiter kept on the node (set up by the app); a permissive one if none was set."""
    limiter = getattr(holder, "rate_limiter", None)
    if limiter is None:
        limiter = Limiter(Limits(None, None, None, None))
    return limiter


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else "unknown"


def too_many(exc: RateLimited, wants_json: bool) -> Response:
    headers = {"Retry-After": str(exc.retry_after)}
    if wants_json:
        return JSONResponse({"error": str(exc)}, status_code=429, headers=headers)
    return PlainTextResponse(str(exc).capitalize() + ".", status_code=429, headers=headers)


async def rate_limited_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RateLimited)
    return too_many(exc, wants_json=request.url.path.endswith("/inbox"))


async def _answer(scope: Scope, exc: RateLimited) -> Response:
    """The refusal at the door: the error page of node/errors.py (JSON for programs)."""
    from node.errors import rate_limited_handler as page  # the page needs the web layer

    return await page(Request(scope), exc)


def _is_inbox(path: str) -> bool:
    return path == "/inbox" or path.endswith("/inbox")


def _is_signup(path: str) -> bool:
    return path == "/signup" or path.startswith("/invite/")


class RateLimitMiddleware:
    """Per client address, before any work is done: inbox POSTs, sign-in and sign-up forms.
    The per-host inbox limit needs the verified signer and lives in inbox/receiver.py."""

    def __init__(self, app: ASGIApp, limiter: Callable[[], Limiter]) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        path, address, limiter = scope["path"], client_address(scope), self.limiter()
        check: Callable[[str], None] | None = None
        if _is_inbox(path):
            check = limiter.check_inbox_address
        elif path == "/login":
            check = limiter.check_login
        elif _is_signup(path):
            check = limiter.check_signup
        if check is not None:
            try:
                check(address)
            except RateLimited as exc:
                await (await _answer(scope, exc))(scope, receive, send)
                return
        await self.app(scope, receive, send)

