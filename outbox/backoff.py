"""Retry schedule, modelled on Mastodon's DeliveryWorker (Sidekiq, 16 retries):
15 + 10·n⁴ seconds plus jitter, so the last tries come about a week after the first."""

from __future__ import annotations

import random

MAX_ATTEMPTS = 17  # the first try and 16 retries


def retry_delay(attempts: int, scale: float = 1.0, rng: random.Random | None = None) -> float:
    """Seconds to wait after the `attempts`-th failed try (1-based)."""
    n = max(0, attempts - 1)
    base = 15 + 10 * n**4
    jitter = (rng or random).uniform(0, 10 * n**4 + 10)
    return (base + jitter) * scale
