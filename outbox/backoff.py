"""Retry schedule, modelled on Mastodon's delivery worker: 16 retries after the first try,
with fourth-power backoff, so that a host that is down is tried for about a week.

The n-th retry waits 15 + 3·n⁴ seconds (n = 0…15) plus up to 10 % of jitter, which spreads
retries of many jobs without ever letting a later retry come sooner than an earlier one. In
total: 6.2 to 6.8 days between the first try and the last.
"""

from __future__ import annotations

import random

MAX_ATTEMPTS = 17  # the first try and 16 retries
JITTER = 0.10


def base_delay(attempts: int) -> float:
    """Seconds before the next try after the `attempts`-th failed one (1-based), no jitter."""
    n = max(0, attempts - 1)
    return 15 + 3 * n**4


def retry_delay(attempts: int, scale: float = 1.0, rng: random.Random | None = None) -> float:
    """Seconds to wait after the `attempts`-th failed try (1-based), jitter included."""
    base = base_delay(attempts)
    return (base + (rng or random).uniform(0, JITTER * base)) * scale
