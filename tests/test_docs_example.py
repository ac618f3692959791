"""The example benchmark of docs/evaluation.md, run as written: one module plus one registry line."""

from __future__ import annotations

import json
import re
import sys

from typer.testing import CliRunner

from ava.cli import app
from conftest import ROOT


def example_module() -> str:
    doc = (ROOT / "docs" / "evaluation.md").read_text(encoding="utf-8")
    section = doc[doc.index("## Adding a benchmark"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_documented_benchmark_runs_end_to_end(tmp_path, monkeypatch):
    from ava.evals import registry

    (tmp_path / "statements_example.py").write_text(example_module(), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(registry.BENCHMARKS, "statements", registry.Benchmark("statements", "statements_example"))
    data = tmp_path / "statements.csv"
    data.write_text("id,text,agree\ns1,Water is wet.,yes\ns2,Cats bark.,no\ns3,The sky is green.,no\n"
                    "s4,Broken row.,maybe\n", encoding="utf-8")
    out = tmp_path / "run"
    args = ["eval", "--model", "uniform", "--benchmark", "statements", "--data", str(data), "--out", str(out),
            "--no-progress"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "1 bad row" in result.output  # the dropped row is counted and reported
    task = json.loads((out / "results.json").read_text())["tasks"]["statements"]
    # uniform: P(Yes) = 0.5 is not > 0.5, so "No" everywhere: right on the two "no" statements of three
    assert task["headline"]["accuracy"] == 100 * 2 / 3 and task["units"] == 3 and task["unit"] == "statements"
    refused = CliRunner().invoke(app, [*args, "--set", "goqa_prompt=both"])
    assert refused.exit_code == 2 and "unknown setting 'goqa_prompt' (known: data_root)" in refused.output
    report = CliRunner().invoke(app, ["report", str(out), "--out", str(tmp_path / "r.html")])
    assert report.exit_code == 0 and "statements" in (tmp_path / "r.html").read_text()
    sys.modules.pop("statements_example", None)


def test_the_example_is_about_forty_lines():
    assert len(example_module().splitlines()) <= 50
