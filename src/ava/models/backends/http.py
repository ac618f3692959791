"""HTTP to an inference server: bounded concurrency, retries with backoff, one-line errors.

Why hand-written on ``requests`` rather than the ``openai`` client: ava must send vLLM's
extension fields (``return_tokens_as_token_ids``, ``add_special_tokens``), read replies in more
than one schema (llama.cpp's), persist what finished when a server dies mid-batch, and name the
server and request in every error; the ``openai`` client hides the raw reply and retries on its
own terms.

A batch of payloads runs on a thread pool of ``concurrency`` workers, so at most that many
requests are in flight. 429, 5xx, timeouts and dropped connections are retried ``retries``
times with exponential backoff (0.5 s doubling, at most 8 s, or the server's ``Retry-After``);
any other error status fails at once. When one request fails for good, the requests not yet
sent are cancelled, those in flight are awaited, and :class:`ServerError` carries the results
that did finish, so the caller can keep them.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from ava.models.loading import ModelError

RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
BACKOFF_START_S, BACKOFF_MAX_S = 0.5, 8.0


class ServerError(ModelError):
    """A server that cannot be used or stopped answering; the message names the server, the
    request and what to do. ``partial``: the batch's results that finished before it failed (by
    index); ``scored``: the scored items a scorer could complete from them (kept by the caller,
    so a server dying mid-batch loses only the requests in flight)."""

    def __init__(self, message: str, partial: dict[int, Any] | None = None) -> None:
        super().__init__(message)
        self.partial = dict(partial or {})
        self.scored: list[Any] = []


@dataclass(frozen=True)
class Call:
    """One HTTP request: ``rid`` names it in errors (the item id and our request number)."""

    path: str
    payload: dict[str, Any]
    rid: str


@dataclass
class Transport:
    """POSTs JSON to ``base_url`` (e.g. ``http://host:8000/v1``); thread-safe."""

    base_url: str
    api_key: str | None = None
    concurrency: int = 16
    timeout_s: float = 300.0
    retries: int = 5
    _local: threading.local = field(default_factory=threading.local, repr=False)
    _counter: int = field(default=0, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def where(self) -> str:
        return f"server {self.base_url}"

    def _session(self) -> Any:
        import requests

        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            if self.api_key:
                session.headers["Authorization"] = f"Bearer {self.api_key}"
        return session

    def _number(self) -> int:
        with self._lock:
            self._counter += 1
            return self._counter

    def get(self, path: str) -> dict[str, Any]:
        """GET ``path`` (one try per attempt as :meth:`post`)."""
        return self._send("GET", Call(path, {}, f"GET {path}"))

    def post(self, call: Call) -> dict[str, Any]:
        """The reply's JSON, after retries; :class:`ServerError` if it cannot be had."""
        return self._send("POST", call)

    def _send(self, method: str, call: Call) -> dict[str, Any]:
        import requests

        url = self.base_url.rstrip("/") + call.path
        rid = f"ava-{self._number()}"
        last, asked_wait = "", 0.0
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(min(BACKOFF_MAX_S, max(BACKOFF_START_S * 2 ** (attempt - 1), asked_wait)))
            try:
                reply = self._session().request(method, url, json=call.payload if method == "POST" else None,
                                                timeout=self.timeout_s, headers={"X-Request-Id": rid})
            except requests.Timeout:
                last = f"no reply within {self.timeout_s:g} s (--request-timeout)"
                continue
            except requests.ConnectionError as exc:
                last = f"cannot connect ({_reason(exc)})"
                continue
            if reply.status_code in RETRY_STATUS:
                last, asked_wait = f"HTTP {reply.status_code} {_message(reply)}", _seconds(reply)
                continue
            if reply.status_code >= 400:
                raise ServerError(self._failed(call, rid, f"HTTP {reply.status_code}: {_message(reply)}",
                                               _hint(reply.status_code)))
            try:
                return json.loads(reply.text, parse_constant=_constant)
            except ValueError as exc:
                raise ServerError(self._failed(call, rid, f"the reply is not JSON ({exc})",
                                               "is --base-url an OpenAI-compatible API (ending in /v1)?")) from None
        why = last
        tries = f"{self.retries + 1} {'try' if self.retries == 0 else 'tries'}"
        raise ServerError(self._failed(call, rid, f"{why}, after {tries}",
                                       "is the server up? (re)start it and rerun the same command to resume: "
                                       "what was scored is kept"))

    def _failed(self, call: Call, rid: str, why: str, what: str) -> str:
        return f"{self.where()}: request {call.rid} ({rid}): {why}; {what}"

    def run(self, calls: Sequence[Call], parse: Callable[[Call, dict[str, Any]], Any]) -> list[Any]:
        """``parse(call, reply)`` of every call, in order, at most ``concurrency`` in flight.

        On the first failure the rest are cancelled and :class:`ServerError` is raised with
        the results that finished (in-flight requests are awaited, not abandoned)."""
        results: list[Any] = [None] * len(calls)
        finished: set[int] = set()
        if not calls:
            return results

        def one(i: int) -> None:
            results[i] = parse(calls[i], self.post(calls[i]))
            finished.add(i)

        pool = ThreadPoolExecutor(max_workers=max(1, min(self.concurrency, len(calls))))
        try:
            futures: list[Future[None]] = [pool.submit(one, i) for i in range(len(calls))]
            _, pending = wait(futures, return_when=FIRST_EXCEPTION)
            for f in pending:
                f.cancel()
            wait(futures)
        except BaseException:  # Ctrl-C: send nothing more (the requests in flight end on their own)
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()
        errors = [f.exception() for f in futures if not f.cancelled() and f.exception() is not None]
        if errors:
            first = errors[0]
            if isinstance(first, ServerError):
                raise ServerError(str(first), {i: results[i] for i in sorted(finished)}) from None
            raise first
        return results


def _constant(name: str) -> float:
    """JSON's non-standard NaN / Infinity, read as floats so that checks can name them."""
    return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}[name]


def _seconds(reply: Any) -> float:
    """The server's ``Retry-After`` in seconds (0 when absent or a date)."""
    try:
        return max(0.0, float(reply.headers.get("Retry-After", 0)))
    except ValueError:
        return 0.0


def _message(reply: Any) -> str:
    """The server's own error message (OpenAI's ``{"error": {"message"}}``, or the body), one line."""
    try:
        body = reply.json()
        error = body.get("error", body) if isinstance(body, dict) else body
        text = error.get("message", error) if isinstance(error, dict) else error
    except ValueError:
        text = reply.text
    return " ".join(str(text).split())[:300] or reply.reason


def _reason(exc: Exception) -> str:
    text = str(exc)
    for known in ("Connection refused", "Connection reset", "Name or service not known", "Remote end closed"):
        if known in text:
            return known.lower()
    return exc.__class__.__name__


def _hint(status: int) -> str:
    if status in (401, 403):
        return "give the API key in the environment variable named by --api-key-env"
    if status == 404:
        return "check --base-url (it ends in /v1) and --served-model (the name the server serves)"
    return "fix the request or the server's settings named above"
