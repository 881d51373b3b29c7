"""Tell people what ``watch`` delivered: a JSON POST to webhooks, a markdown note to DingTalk.

A notification never stops the watch: each POST has a timeout and a few
attempts; a receiver that still fails is reported as a warning event and
skipped for the rest of that round. URLs, tokens and signatures are never put
into a message: receivers are named "webhook 1 (https://host)" or "DingTalk robot 1".
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import quote_plus, urlsplit

from imageferry.core.cancel import CancelToken
from imageferry.core.config import DingTalkConfig
from imageferry.core.errors import Cancelled
from imageferry.core.events import EventSink, Message, say
from imageferry.engine.execute import ImageResult

log = logging.getLogger(__name__)

DINGTALK_URL = "https://oapi.dingtalk.com/robot/send"
DINGTALK_URL_ENV = "IMAGEFERRY_DINGTALK_URL"  # tests point DingTalk at a local receiver
DINGTALK_PER_ROUND = 15  # DingTalk allows 20 messages a minute per robot
MAX_ANSWER = 64 * 1024


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass(frozen=True)
class ImageNote:
    """What a webhook receives for one image on one target."""

    image: str
    target: str
    target_name: str
    digest: str | None
    status: str  # "copied" or "failed"
    error: str | None
    time: str

    @classmethod
    def of(cls, result: ImageResult) -> ImageNote:
        return cls(
            result.source,
            result.target,
            result.target_name,
            result.digest,
            result.status,
            result.error,
            utc_now(),
        )

    def payload(self) -> dict[str, Any]:
        return {"event": "image", **asdict(self)}


@dataclass(frozen=True)
class RoundNote:
    """One watch round, as notifications tell it."""

    round: int
    copied: int
    skipped: int
    failed: int
    images: tuple[ImageNote, ...]
    time: str

    def payload(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["images"] = [asdict(n) for n in self.images]
        return {"event": "round", **doc}


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's signature: base64(HMAC-SHA256(secret, "<timestamp>\\n<secret>")), URL-encoded."""
    text = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode(), text, hashlib.sha256).digest()
    return quote_plus(base64.b64encode(digest).decode())


def dingtalk_url(robot: DingTalkConfig, timestamp_ms: int, base: str | None = None) -> str:
    """The robot's send URL: access token, and timestamp and sign when it has a secret."""
    url = f"{base or os.environ.get(DINGTALK_URL_ENV) or DINGTALK_URL}"
    url += f"?access_token={quote_plus(robot.token.get_secret_value())}"
    if robot.secret is not None:
        sign = dingtalk_sign(robot.secret.get_secret_value(), timestamp_ms)
        url += f"&timestamp={timestamp_ms}&sign={sign}"
    return url


def dingtalk_markdown(notes: list[ImageNote], title: str) -> dict[str, Any]:
    lines = [f"### {title}", ""]
    for n in notes[:50]:
        lines.append(f"- **{n.status}** {n.image} → {n.target}")
        if n.digest:
            lines.append(f"  - digest: `{n.digest}`")
        if n.error:
            lines.append(f"  - error: {n.error[:300]}")
    if len(notes) > 50:
        lines.append(f"- … and {len(notes) - 50} more")
    lines.append(f"\n{notes[0].time if notes else utc_now()}")
    return {"msgtype": "markdown", "markdown": {"title": title, "text": "\n".join(lines)}}


@dataclass
class _Receiver:
    """Where notifications go: a webhook or a DingTalk robot."""

    label: str  # safe to show: no path, query, token or signature
    url: Callable[[], str]  # built per send (DingTalk signs with the current time)
    dingtalk: bool


class Notifier:
    """Sends notes to every configured receiver (blocking; from the watch's thread)."""

    def __init__(
        self,
        webhooks: list[str],
        robots: list[DingTalkConfig],
        events: EventSink,
        cancel: CancelToken,
        *,
        attempts: int = 3,
        timeout: float = 5.0,
        backoff: float = 0.5,
    ) -> None:
        self.events, self.cancel = events, cancel
        self.attempts, self.timeout, self.backoff = attempts, timeout, backoff
        self.webhooks = [_webhook(i, url) for i, url in enumerate(webhooks, start=1)]
        self.robots = [_robot(i, r) for i, r in enumerate(robots, start=1)]

    @property
    def configured(self) -> bool:
        return bool(self.webhooks or self.robots)

    def round_done(self, note: RoundNote) -> None:
        """A note per copied or failed image, then the round's summary; never raises."""
        if not note.images or not self.configured:
            return
        given_up: set[str] = set()
        try:
            for image in note.images:
                for hook in self.webhooks:
                    self._send(hook, image.payload(), given_up)
            self._send_dingtalk(note, given_up)
            for hook in self.webhooks:
                self._send(hook, note.payload(), given_up)
        except Cancelled:
            return  # stopping: the rest of the notes are dropped
        except Exception as exc:  # a notification never ends a watch
            log.exception("notifications of round %d", note.round)
            self.events(say("warning", "notifications failed: {error}", error=type(exc).__name__))

    def _send_dingtalk(self, note: RoundNote, given_up: set[str]) -> None:
        images = list(note.images)
        if len(images) <= DINGTALK_PER_ROUND:
            messages = [
                dingtalk_markdown([n], f"imageferry: {n.status} {n.target}") for n in images
            ]
        else:
            title = f"imageferry: {note.copied} copied, {note.failed} failed"
            messages = [dingtalk_markdown(images, title)]
        for robot in self.robots:
            for body in messages:
                self._send(robot, body, given_up)

    def _send(self, receiver: _Receiver, body: dict[str, Any], given_up: set[str]) -> None:
        if receiver.label in given_up:
            return
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        problem = ""
        for attempt in range(self.attempts):
            if attempt:
                self.cancel.sleep(self.backoff * 2 ** (attempt - 1))
            problem = self._post(receiver, data)
            if not problem:
                return
        given_up.add(receiver.label)
        self.events(
            Message(
                "warning",
                f"notification to {receiver.label} failed after {self.attempts} attempts "
                f"({problem}); skipping it for the rest of this round",
            )
        )

    def _post(self, receiver: _Receiver, data: bytes) -> str:
        """Empty when delivered, else what went wrong (never the URL)."""
        request = urllib.request.Request(
            receiver.url(),
            data=data,
            method="POST",
            headers={"Content-Type": "application/json; charset=utf-8"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                answer = resp.read(MAX_ANSWER)
        except urllib.error.HTTPError as exc:
            exc.close()
            return f"HTTP {exc.code}"
        except ValueError:  # its text may quote the URL
            return "the URL was refused"
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            return f"cannot connect: {type(reason).__name__}: {str(reason)[:120]}"
        except http.client.HTTPException as exc:  # the receiver does not speak HTTP
            return f"not an HTTP answer ({type(exc).__name__})"
        return _dingtalk_problem(answer) if receiver.dingtalk else ""


def _dingtalk_problem(answer: bytes) -> str:
    """DingTalk answers 200 with ``errcode`` 0 on success, else a code and a reason."""
    try:
        doc = json.loads(answer)
        code = int(doc.get("errcode", 0))
    except (ValueError, AttributeError, TypeError):
        return "DingTalk answered something that is not its JSON"
    return "" if code == 0 else f"DingTalk error {code}: {str(doc.get('errmsg', ''))[:120]}"


def _webhook(index: int, url: str) -> _Receiver:
    parts = urlsplit(url)
    return _Receiver(f"webhook {index} ({parts.scheme}://{parts.hostname})", lambda: url, False)


def _robot(index: int, robot: DingTalkConfig) -> _Receiver:
    return _Receiver(
        f"DingTalk robot {index}",
        lambda: dingtalk_url(robot, int(time.time() * 1000)),
        True,
    )
