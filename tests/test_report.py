"""``ava report``: the HTML page comparing runs, checked as Chromium renders it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ava.cli import app
from ava.evals.runner import run_tasks
from ava.evals.tasks.opinion_task import OpinionTask
from ava.reports.html import ReportError, build_report
from test_opinionqa import OracleScorer, fixtures


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    from ava.models import load_scorer

    root = tmp_path_factory.mktemp("runs")
    qs = fixtures()
    run_tasks([OpinionTask("opinionqa", qs, n_resamples=20)], load_scorer("uniform"), root / "uniform", progress=False)
    run_tasks([OpinionTask("opinionqa", qs, n_resamples=20)], OracleScorer(qs), root / "oracle", progress=False)
    return root


class Cells(HTMLParser):
    """Text of every table cell by table id, and the images' sources."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.images: list[str] = []
        self.texts: dict[str, str] = {}
        self._table: str | None = None
        self._id: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self._table = a.get("id", "")
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []
        elif tag == "img":
            self.images.append(a.get("src", ""))
        if a.get("id"):
            self._id = a["id"]

    def handle_endtag(self, tag):
        self._id = None  # ids are read for leaf elements only (the render check)
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._id:
            self.texts[self._id] = self.texts.get(self._id, "") + data


def parse(page: str) -> Cells:
    cells = Cells()
    cells.feed(page)
    return cells


def test_report_tables_and_embedded_images(two_runs):
    page = build_report([two_runs / "uniform", two_runs / "oracle"])
    doc = parse(page)
    headline = doc.tables["headline"]
    assert headline[0] == ["task", "metric", "uniform", "oracle"]
    rep = next(r for r in headline if r[1] == "representativeness")
    assert rep[2].startswith("0.858") and rep[3].startswith("1.000")
    heat = doc.tables["heatmap-opinionqa"]
    assert heat[0] == ["group", "uniform", "oracle"] and len(heat) == 1 + 4
    assert all(src.startswith("data:image/png;base64,") for src in doc.images)
    assert len(doc.images) == 1 + 1 + 2  # the opening figure, the comparison plot and each run's group plot
    assert "not-comparable" not in page  # same fixture items in both runs
    assert "file:" not in page and "http" not in page.replace("http-equiv", "")  # self-contained


def test_report_refuses_unfinished_and_foreign_directories(two_runs, tmp_path):
    unfinished = tmp_path / "unfinished"
    shutil.copytree(two_runs / "uniform", unfinished)
    manifest = json.loads((unfinished / "run.json").read_text())
    (unfinished / "run.json").write_text(json.dumps({**manifest, "status": "interrupted"}))
    with pytest.raises(ReportError, match="interrupted, not complete"):
        build_report([unfinished])
    with pytest.raises(ReportError, match="no run.json"):
        build_report([tmp_path])
    result = CliRunner().invoke(app, ["report", str(tmp_path / "missing"), "--out", str(tmp_path / "r.html")])
    assert result.exit_code == 2 and "no such run directory" in result.output


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return name
    pytest.skip("Chromium is not installed (Debian: apt-get install -y chromium)")


def rendered_dom(page: Path) -> str:
    """The page's DOM as headless Chromium renders it (JavaScript run, images decoded), with the
    flags a closed network needs and a fresh profile."""
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--virtual-time-budget=5000", "--dump-dom", page.resolve().as_uri()],
            capture_output=True, text=True, timeout=120,
        )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_report_as_rendered_by_headless_chromium(two_runs, tmp_path):
    out = tmp_path / "report.html"
    result = CliRunner().invoke(app, ["report", str(two_runs / "uniform"), str(two_runs / "oracle"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    dom = rendered_dom(out)
    doc = parse(dom)
    assert doc.tables["headline"][0] == ["task", "metric", "uniform", "oracle"]
    assert any(r[1] == "humans_average" for r in doc.tables["headline"])
    assert len(doc.tables["heatmap-opinionqa"]) == 5
    # the page's own check: every embedded PNG decoded in the browser
    assert re.fullmatch(r"4 of 4 images rendered", doc.texts.get("render-check", "").strip())
    # the page opens with the figure: before the first table, and its image is the first one
    assert dom.index('<figure id="figure-opinionqa">') < dom.index("<table") < dom.index("<h2>Headline numbers</h2>")
    assert doc.images[0] == parse(build_report([two_runs / "uniform", two_runs / "oracle"])).images[0]


def test_report_flags_runs_over_different_items(two_runs, tmp_path):
    from ava.models import load_scorer

    qs = fixtures()
    run_tasks([OpinionTask("opinionqa", qs, n_resamples=5, limit=1)], load_scorer("uniform"), tmp_path / "one",
              progress=False)
    doc = parse(build_report([two_runs / "uniform", tmp_path / "one"]))
    assert "dataset hashes differ" in doc.texts["not-comparable"] and "opinionqa" in doc.texts["not-comparable"]


def test_the_opening_figure_sets_variants_side_by_side(two_runs, tmp_path):
    """Runs that read the model differently (here orders=1 vs 3) are labelled by what differs; the
    letter prior panel is for the option count most questions have; the PNG decodes at its size."""
    import io

    from matplotlib import image

    from ava.evals.tasks.option_orders import OrderSpec
    from ava.reports import figure
    from ava.reports.html import load_run
    from test_option_orders import PositionScorer

    qs = fixtures()
    run_tasks([OpinionTask("opinionqa", qs, n_resamples=5, orders=OrderSpec(3))],
              PositionScorer(qs, [4, 1, 1, 1], content=True), tmp_path / "orders3", progress=False)
    runs = [load_run(two_runs / "uniform"), load_run(tmp_path / "orders3")]
    assert figure.figure_tasks(runs) == ["opinionqa"]
    assert figure.variant_labels(runs, "opinionqa") == ["uniform\norders=1", "orders3\norders=3"]
    assert figure.variant_labels(runs[:1], "opinionqa") == ["uniform"]  # nothing differs: the label alone
    assert figure.common_k(runs, "opinionqa") == 3
    png = image.imread(io.BytesIO(figure.headline_figure("opinionqa", runs)), format="png")
    assert png.shape[0] > 300 and png.shape[1] > 800
    doc = parse(build_report([two_runs / "uniform", tmp_path / "orders3"]))
    assert doc.images[0].startswith("data:image/png;base64,") and len(doc.images) == 4


def test_variant_settings_are_read_from_the_run_record_first():
    """The recorded ``--set`` values (or an option of their own, like --expression) name the
    variant; a run without them (a library call) falls back on what its result says."""

    from ava.reports.figure import run_settings, variant_labels
    from ava.reports.html import Run

    task = {"headline": {"representativeness": 0.8, "uniform_representativeness": 0.82},
            "details": {"orders": {"orders": 4, "order_kind": "cyclic", "debias": "none"}}}
    cli = Run("a", Path("a"), {"run": {"config": {"settings": {"orders": "2"}, "expression": "calibrated"}},
                               "tasks": {"opinionqa": task}})
    lib = Run("b", Path("b"), {"run": {}, "tasks": {"opinionqa": task}})
    assert run_settings(cli, "opinionqa") == {"expression": "calibrated", "orders": "2", "order_kind": "cyclic",
                                              "debias": "none"}
    fallback = run_settings(lib, "opinionqa")
    assert fallback["orders"] == "4" and fallback["expression"] == "logprobs"
    assert variant_labels([cli, lib], "opinionqa") == ["a\nexpression=calibrated, orders=2",
                                                       "b\nexpression=logprobs, orders=4"]
