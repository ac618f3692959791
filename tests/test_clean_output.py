"""A clean run of the main job prints no library warnings (issue 16).

``make demo`` is ``ava eval --model smollm2 --suite quick``; this runs the same command on one
unit per task, on a fresh machine's data (an empty data root: the bundled survey data and
GlobalOpinionQA subset), in a subprocess with the environment a user has (Python's default
warning filters, no test-only variables), and reads everything it printed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
LIBRARY_NOISE = re.compile(r"Warning\b|WARNING|warnings\.warn|\[transformers\]|deprecated|Traceback|"
                           r"huggingface/tokenizers", re.IGNORECASE)
OURS = ("warning: ",)  # ava's own warnings (a low letter mass, dropped rows) are messages, not noise


@pytest.mark.slow
def test_the_main_job_prints_no_library_warnings(tmp_path):
    (tmp_path / "no-data").mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONWARNINGS", "TOKENIZERS_PARALLELISM", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")}
    env.update({"PYTHONPATH": str(SRC), "HF_HUB_OFFLINE": "1"})
    command = [sys.executable, "-m", "ava.cli", "eval", "--model", "smollm2", "--suite", "quick", "--limit", "1",
               "--set", "formats=qa", "--set", f"data_root={tmp_path / 'no-data'}", "--out", str(tmp_path / "demo")]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    noise = [line for stream in (done.stdout, done.stderr) for line in stream.splitlines()
             if LIBRARY_NOISE.search(line) and not line.startswith(OURS)]
    assert noise == [], "\n".join(noise)
    assert "framing: chat (auto: smollm2 is instruction-tuned" in done.stdout
    assert re.search(r"^smollm2 +\d+\.\d\d +\d+\.\d\d +\d+\.\d\d +\d+\.\d\d +\d+\.\d\d +\d+\.\d\d +– +– +– +–$",
                     done.stdout, re.M), done.stdout  # OQA-XL, OQA and GOQA columns; CB and CNLI skipped
