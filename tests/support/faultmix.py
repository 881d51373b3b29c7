"""A seeded mix of transient faults for :class:`~support.faultproxy.FaultProxy`.

The mix of issue 9: 5% connection resets on GET and PUT (mid-answer for a GET,
mid-request for a PUT), 2% HTTP 503 in bursts of two, 3% HTTP 429 with a
Retry-After (seconds or an HTTP date). Each decision depends only on the
seed, the request (method and path, upload session ids left out) and how
often that request was seen before, not on the order in which threads send
requests: a failing seed fails again.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections import Counter
from email.utils import formatdate

from support.faultproxy import Fault

RESET = 0.05
UNAVAILABLE = 0.02
RATE_LIMITED = 0.03
_UPLOAD_ID = re.compile(r"/blobs/uploads/[^?]*")
_STATE = re.compile(r"[?&]_state=[^&]*")


def request_key(method: str, path: str) -> str:
    """The request without what differs between attempts (upload ids, upload state)."""
    return f"{method} {_STATE.sub('', _UPLOAD_ID.sub('/blobs/uploads/*', path))}"


class FaultMix:
    """A proxy rule; ``faults`` counts what it injected, by kind."""

    def __init__(self, seed: str) -> None:
        self.seed = seed
        self.faults: Counter[str] = Counter()
        self._seen: Counter[str] = Counter()
        self._burst: set[str] = set()  # requests whose next attempt gets the second 503
        self._lock = threading.Lock()

    def __call__(self, method: str, path: str, _count: int) -> Fault | None:
        key = request_key(method, path)
        with self._lock:
            self._seen[key] += 1
            rng = random.Random(f"{self.seed}|{key}|{self._seen[key]}")
            if key in self._burst:
                self._burst.discard(key)
                return self._count("503", Fault(status=503))
            draw = rng.random()
            if method in ("GET", "PUT"):
                if draw < RESET:
                    return self._count(f"reset {method}", _reset(method, rng))
                draw -= RESET
            if draw < UNAVAILABLE:
                self._burst.add(key)
                return self._count("503", Fault(status=503))
            if draw < UNAVAILABLE + RATE_LIMITED:
                return self._count("429", Fault(status=429, headers=(_retry_after(rng),)))
        return None

    def _count(self, kind: str, fault: Fault) -> Fault:
        self.faults[kind] += 1
        return fault


def _reset(method: str, rng: random.Random) -> Fault:
    if method == "GET":
        return Fault(reset_fraction=rng.uniform(0.0, 0.95))
    return Fault(reset_request_after=rng.randrange(0, 4096))


def _retry_after(rng: random.Random) -> tuple[str, str]:
    if rng.random() < 0.5:
        return ("Retry-After", "1")
    return ("Retry-After", formatdate(time.time() + 1, usegmt=True))  # an HTTP date
