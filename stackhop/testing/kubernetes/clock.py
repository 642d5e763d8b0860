"""Wall-clock timestamps in API format, and the time scale applied to every simulated delay.

Kubernetes timing (pod back-off, activeDeadlineSeconds, ttlSecondsAfterFinished, grace periods)
is in seconds to minutes; tests set `time_scale` < 1 to compress all of it consistently instead
of each behaviour getting its own ad-hoc "fast" knob.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

__all__ = ["Clock", "rfc3339", "rfc3339_micro"]


def rfc3339(timestamp: float | None = None) -> str:
    """Second-precision UTC time, as in creationTimestamp and condition transition times."""
    moment = datetime.fromtimestamp(time.time() if timestamp is None else timestamp, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_micro(timestamp: float | None = None) -> str:
    """Microsecond-precision UTC time, as in Event.eventTime and log timestamps."""
    moment = datetime.fromtimestamp(time.time() if timestamp is None else timestamp, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Clock:
    """Scales simulated durations; wall-clock timestamps themselves are never scaled."""

    def __init__(self, time_scale: float) -> None:
        if not time_scale > 0:
            raise ValueError("time_scale must be positive")
        self.time_scale = time_scale

    def scaled(self, seconds: float) -> float:
        """How long a simulated delay of `seconds` really lasts."""
        return seconds * self.time_scale

    @staticmethod
    def monotonic() -> float:
        return time.monotonic()
