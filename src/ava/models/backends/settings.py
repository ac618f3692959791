"""Which backend reads the model, and how: checked on creation, part of the run's identity.

The identity (the key of every cached score and what a run directory is bound to) names the
backend and, for the non-default ones, the mode (``exact``, or ``topK`` with its k: top-k scores
differ from exact ones) and the served model name. The default (``transformers``) keeps the
identity it always had, so existing caches stay valid. The server's URL, the concurrency and
the timeouts are recorded, not bound: they say where and how fast, not what was read (a server
restarted on another port serves the same scores, and a run resumes there). The API key is
read from the environment variable ``api_key_env`` names and never written anywhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ava.models.backends import BACKENDS, MODES
from ava.models.loading import ModelError


@dataclass(frozen=True)
class BackendSettings:
    backend: str = "transformers"
    mode: str = "exact"
    base_url: str | None = None
    served_model: str | None = None
    api_key_env: str | None = None
    top_k: int = 20
    min_coverage: float = 0.95
    concurrency: int = 16
    timeout_s: float = 300.0
    retries: int = 5

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ModelError(f"unknown --backend {self.backend!r}: pass {', '.join(BACKENDS)}")
        if self.mode not in MODES:
            raise ModelError(f"unknown --mode {self.mode!r}: pass exact or topk")
        if self.backend == "openai" and not self.base_url:
            raise ModelError("--backend openai needs --base-url (e.g. http://127.0.0.1:8000/v1)")
        if self.backend != "openai" and (self.base_url or self.served_model or self.api_key_env):
            raise ModelError(f"--base-url, --served-model and --api-key-env name a server: use them with "
                             f"--backend openai, not {self.backend}")
        if self.backend == "transformers" and self.mode != "exact":
            raise ModelError("--mode topk reads a server's top-k; the transformers backend reads every letter exactly: "
                             "drop --mode, or pass --backend openai or vllm")
        if self.base_url and not self.base_url.startswith(("http://", "https://")):
            raise ModelError(f"--base-url {self.base_url!r}: give an http:// or https:// URL ending in /v1")
        if self.top_k < (1 if self.mode == "topk" else 0):
            raise ModelError(f"--top-k {self.top_k}: top-k mode needs at least 1 (exact mode: 0 = echo every letter)")
        if not 0.0 <= self.min_coverage <= 1.0:
            raise ModelError(f"--min-coverage {self.min_coverage}: a share of letters, between 0 and 1")
        if self.concurrency < 1 or self.retries < 0 or self.timeout_s <= 0:
            raise ModelError("--concurrency must be >= 1, --retries >= 0 and --request-timeout > 0")
        if self.api_key_env is not None and not os.environ.get(self.api_key_env):
            raise ModelError(f"--api-key-env {self.api_key_env}: that environment variable is not set; "
                             "export it with the server's API key (or drop --api-key-env for a server without one)")

    @property
    def is_default(self) -> bool:
        return self.backend == "transformers"

    def mode_tag(self) -> str:
        return "exact" if self.mode == "exact" else f"top{self.top_k}"

    def identity(self, model_identity: str) -> str:
        """The scorer identity for a model identity (``scorer_identity``: weights, dtype, framing)."""
        if self.is_default:
            return model_identity
        served = f":{self.served_model}" if self.backend == "openai" else ""
        return f"{self.backend}:{self.mode_tag()}{served}|{model_identity}"

    def api_key(self) -> str | None:
        return os.environ.get(self.api_key_env) if self.api_key_env else None

    def to_config(self) -> dict[str, Any]:
        """What a run records (never the key itself, only the variable's name)."""
        if self.is_default:
            return {"backend": self.backend}
        keep = ("backend", "mode", "top_k", "min_coverage", "concurrency", "timeout_s", "retries")
        out = {k: getattr(self, k) for k in keep}
        if self.backend == "openai":
            out.update(base_url=self.base_url, served_model=self.served_model, api_key_env=self.api_key_env)
        return out
