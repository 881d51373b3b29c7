"""Retry-After in both forms, and the waits the one retry policy chooses."""

from __future__ import annotations

from email.utils import formatdate
from time import time

from imageferry.core.errors import RegistryError
from imageferry.core.retry import RetryPolicy
from imageferry.registry.exchange import retry_after


def test_retry_after_in_seconds_and_as_an_http_date():
    assert retry_after("7") == 7.0
    assert retry_after(" 0 ") == 0.0
    assert 8.0 <= (retry_after(formatdate(time() + 10, usegmt=True)) or 0) <= 10.0
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past: now
    assert retry_after("Wednesday, 21-Oct-15 07:28:00 GMT") == 0.0  # RFC 850, obsolete
    assert retry_after("soon") is None and retry_after("") is None and retry_after(None) is None


def test_delay_honours_retry_after_with_a_little_jitter_and_a_cap():
    policy = RetryPolicy(retries=2, base_delay=0.5, max_delay=30.0)
    told = RegistryError("429", status=429, temporary=True, retry_after=4.0)
    waits = [policy.delay(0, told) for _ in range(200)]
    assert all(4.0 <= w <= 4.4 for w in waits) and len(set(waits)) > 1
    far = RegistryError("503", status=503, temporary=True, retry_after=3600.0)
    assert policy.delay(0, far) == 30.0
    plain = RegistryError("503", status=503, temporary=True)
    assert all(0.25 <= policy.delay(0, plain) <= 0.5 for _ in range(50))
    assert all(1.0 <= policy.delay(2, plain) <= 2.0 for _ in range(50))
