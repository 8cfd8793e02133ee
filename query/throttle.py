"""Slowing down token guessing: failed authentications per client address in a sliding minute.

An address with PS_AUTH_FAILURES_PER_MINUTE failures in the last minute gets 429 on every
request that needs a token, before its token is even looked at (so a guess cannot be confirmed
while throttled), until its oldest failure leaves the window. Held in this process's memory,
for a bounded number of addresses: several query replicas each count their own.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable

log = logging.getLogger(__name__)

WINDOW_S = 60.0
# Beyond this many addresses the one that failed least recently is forgotten: memory stays
# bounded whatever a scan from many addresses sends.
MAX_ADDRESSES = 10_000


class AuthThrottle:
    def __init__(
        self,
        failures_per_window: int,
        *,
        window_s: float = WINDOW_S,
        max_addresses: int = MAX_ADDRESSES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = failures_per_window  # 0: never throttle
        self.window_s = window_s
        self.max_addresses = max_addresses
        self.clock = clock
        # address -> times of its latest failures (at most `limit` of them: only they matter)
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, address: str, now: float) -> deque[float] | None:
        times = self._failures.get(address)
        if times is None:
            return None
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._failures[address]
            return None
        return times

    def retry_after_s(self, address: str) -> int | None:
        """Seconds until `address` may try again, or None when it is not throttled."""
        if self.limit <= 0:
            return None
        now = self.clock()
        times = self._recent(address, now)
        if times is None or len(times) < self.limit:
            return None
        # The oldest of the last `limit` failures leaving the window frees the address.
        return max(1, math.ceil(times[0] + self.window_s - now))

    def record_failure(self, address: str) -> None:
        if self.limit <= 0:
            return
        now = self.clock()
        times = self._recent(address, now)
        if times is None:
            times = deque(maxlen=self.limit)
            self._failures[address] = times
            while len(self._failures) > self.max_addresses:
                self._failures.popitem(last=False)
        self._failures.move_to_end(address)
        times.append(now)
        if len(times) == self.limit:
            # Once per throttling: the next failures are not counted (their tokens are not
            # checked) until this one frees the address.
            log.warning(
                "auth throttle: %s made %d failed authentications within %.0f s; "
                "answering 429 to its requests until they age out",
                address,
                len(times),
                self.window_s,
            )

    def tracked_addresses(self) -> int:
        return len(self._failures)


def throttled_address(host: str) -> str:
    """What the throttle counts failures under: an IPv4 address as it is, an IPv6 one by its
    /64 (one host or home network holds a whole /64, so counting each address would let it
    make 30 guesses from each of 2^64)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return host
