"""Helpers shared by the catalogue tests (imported as ``from catalogue import ...``).

Every case asserts what a user sees: the exit code, exactly one ``error:`` line naming the
file (line or id) and the reason, and never a Python traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

SRC = Path(__file__).resolve().parents[2] / "src"


def invoke(*args: str) -> Result:
    """``ava ARGS`` in this process (so a test can monkeypatch what must not happen)."""
    from ava.cli import app

    return CliRunner().invoke(app, list(args))


def assert_error(result: Result, *needles: str, code: int = 2) -> str:
    """One ``error:`` line containing every needle, exit ``code``, no traceback; returns the line."""
    output = result.output
    assert "Traceback" not in output, output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == code, (result.exit_code, output)
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, output
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    return errors[0]


def forbid_model_loading(monkeypatch) -> None:
    """Make loading any model fail the test: the command must refuse before that (scoring and
    generation load through ``ava.models``, training through transformers directly)."""
    from transformers import AutoModelForCausalLM

    def loaded(*args, **kwargs):
        raise AssertionError("a model was loaded before the command refused")

    monkeypatch.setattr("ava.models.scorer.load_scorer", loaded)
    monkeypatch.setattr("ava.models.options.load_model", loaded)
    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", loaded)


def run_unprivileged(args: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``ava ARGS`` in a subprocess that file permissions apply to.

    Root writes anywhere, so when running as root the subprocess drops the capabilities that
    override file permissions (``prctl(PR_CAPBSET_DROP)``: it stays root, but a read-only
    folder is read-only to it). Skips the test when that is not allowed here.
    """
    env = {**os.environ, "PYTHONPATH": str(SRC), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    if os.geteuid() == 0 and not _can_drop_capabilities():
        pytest.skip("running as root without the right to drop CAP_DAC_OVERRIDE: cannot make a folder read-only")
    return subprocess.run([sys.executable, "-m", "ava.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300, preexec_fn=_drop_capabilities if os.geteuid() == 0 else None)


_PR_CAPBSET_DROP, _CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH = 24, 1, 2


def _drop_capabilities() -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH):
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def _can_drop_capabilities() -> bool:
    probe = subprocess.run([sys.executable, "-c", "pass"], preexec_fn=_drop_capabilities, capture_output=True)
    return probe.returncode == 0
