"""CultureBank (Shi et al. 2024) direct evaluation: would most of this cultural group agree?

Loader for the released CSVs (``culturebank_tiktok.csv``, ``culturebank_reddit.csv`` from the
Hugging Face dataset SALT-NLP/CultureBank), the published held-out split (pandas shuffle with
seed 1234, last 10%), the direct Yes/No prompt, and accuracy per source against
``agreement > 0.5``. Yes/No is read from the model's next-token distribution (renormalised
over "Yes" and "No"), not by sampling; a model exactly indifferent scores half a point.
"""

from __future__ import annotations

import io
import json
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ava.contracts.results import ItemScore
from ava.contracts.scoring import ScoredItem, ScoreRequest
from ava.evals.data import DataError, DataNotFound, LoadReport, data_root, read_utf8
from ava.evals.prompts.culture import culture_templates, join_segments
from ava.evals.task import EvalItem, TaskOptions, TaskResult
from ava.metrics.classification import reduce_agreement
from ava.metrics.resampling import resample_weights
from ava.subsets import seeded_subset

HOW_TO_GET = (
    "download culturebank_tiktok.csv and culturebank_reddit.csv from the Hugging Face hub (SALT-NLP/CultureBank) "
    "and pass --set culturebank_dir=DIR (or --data DIR with --benchmark culturebank)"
)
SETTINGS = {
    "culturebank_dir": "folder holding the released CSVs (same as --data with --benchmark culturebank)",
    "data_root": "folder holding one data folder per benchmark (default $AVA_DATA or ../shared/data)",
}


def _config() -> dict[str, Any]:
    return culture_templates()["culturebank"]


def find_files(folder: Path) -> dict[str, Path | None]:
    """Each source's CSV in ``folder``: directly inside, in a per-source subfolder, or anywhere below."""
    found: dict[str, Path | None] = {}
    for source, filename in _config()["sources"].items():
        hits = [p for p in (folder / filename, folder / source.lower() / filename) if p.is_file()]
        if not hits and folder.is_dir():
            hits = sorted(folder.rglob(filename))
        found[source] = hits[0] if hits else None
    return found


def required_columns() -> list[str]:
    return [*_config()["fields"].values(), "agreement"]


def load_culturebank(path: str | Path) -> tuple[pd.DataFrame, LoadReport]:
    """A released CSV, all rows, in file order (``row`` = 0-based data row)."""
    path = Path(path)
    report = LoadReport(str(path))
    try:
        df = pd.read_csv(io.StringIO(read_utf8(path)), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"{path}: not a readable CSV ({exc}); re-download it from SALT-NLP/CultureBank") from None
    missing = [c for c in required_columns() if c not in df.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; expected the released CultureBank layout "
                         f"({', '.join(required_columns())}, ...)")
    df.insert(0, "row", range(len(df)))
    report.rows = report.kept = len(df)
    return df, report


def test_split(df: pd.DataFrame, seed: int | None = None, share: float | None = None) -> pd.DataFrame:
    """The published held-out split: shuffle all rows with ``seed``, keep the last ``share``."""
    cfg = _config()
    seed = cfg["split_seed"] if seed is None else seed
    share = cfg["test_share"] if share is None else share
    shuffled = df.sample(frac=1, random_state=seed).reset_index(drop=True)
    return shuffled.tail(int(len(shuffled) * share)).reset_index(drop=True)


def parse_agreement(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or not 0 <= value <= 1:
        raise ValueError(f"agreement {text!r} is not a share between 0 and 1")
    return value


def behaviour_json(row: Mapping[str, Any]) -> str:
    """The behaviour as the published prompt shows it: JSON of the evaluation fields, indent 4."""
    fields = {name: (str(row[col]) if str(row[col]).strip() else None) for name, col in _config()["fields"].items()}
    return json.dumps(fields, indent=4, ensure_ascii=False)


class CultureBankTask:
    """One Yes/No prompt per held-out row of each source present; accuracy per source."""

    name = "culturebank"
    reducer = "agreement"

    def __init__(self, rows: Mapping[str, pd.DataFrame], reports: Mapping[str, LoadReport],
                 missing: Mapping[str, str]) -> None:
        tpl = culture_templates()
        self.template_version = str(tpl["version"])
        self.version = f"1+templates{self.template_version}"
        self.rows = dict(rows)
        self.reports = dict(reports)
        self.missing = dict(missing)
        self._items: list[EvalItem] | None = None

    def items(self) -> list[EvalItem]:
        if self._items is None:
            cfg = _config()
            definitions = {name: cfg["definitions"][name] for name in cfg["fields"]}
            head = cfg["head"].format(definitions=json.dumps(definitions, indent=4))
            options = tuple(cfg["options"])
            items = []
            for source, df in self.rows.items():
                for k, rec in enumerate(df.to_dict("records")):
                    iid = f"{source}:{rec['row']}"
                    body = cfg["body"].format(behavior=behaviour_json(rec))
                    # unit k = the k-th sampled row of every source: a runner --limit N keeps N per source
                    meta = {"unit": k, "source": source, "row": int(rec["row"]), "agreement": rec["agreement_value"],
                            "gold": bool(rec["agreement_value"] > 0.5),
                            "cultural_group": rec["cultural group"], "topic": rec.get("topic", "")}
                    request = ScoreRequest(iid, join_segments([head, body, cfg["cue"]]), options)
                    items.append(EvalItem(iid, request, meta))
            self._items = items
        return self._items

    def score(self, items: Sequence[EvalItem], outputs: Mapping[str, ScoredItem]) -> list[ItemScore]:
        """Per row: P(Yes) against the gold (agreement > 0.5); credit 1 / 0, an exact tie 0.5."""
        out = []
        for i in items:
            p_yes, gold = outputs[i.id].probs[0], bool(i.meta["gold"])
            credit = 0.5 if p_yes == 0.5 else float((p_yes > 0.5) == gold)
            out.append(ItemScore(i.id, str(i.meta["unit"]), {
                "source": i.meta["source"], "gold": gold, "p_yes": p_yes, "credit": credit,
                "letter_mass": outputs[i.id].letter_mass}))
        return out

    def metrics(self, scores: Sequence[ItemScore]) -> TaskResult:
        reduced = reduce_agreement(scores, resample_weights(len({s.unit for s in scores}), 0)).metrics
        headline: dict[str, float | None] = {k: float(v[0]) for k, v in reduced.items()}
        table = []
        for source in self.rows:
            mine = [s for s in scores if s.values["source"] == source]
            if not mine:
                continue
            p_yes = np.array([s.values["p_yes"] for s in mine])
            gold = np.array([bool(s.values["gold"]) for s in mine])
            credit = np.array([s.values["credit"] for s in mine])
            p_gold = np.where(gold, p_yes, 1 - p_yes)
            table.append({
                "source": source, "n": len(mine), "accuracy": round(100 * float(credit.mean()), 4),
                "expected_accuracy": round(100 * float(p_gold.mean()), 4),
                "share_agree": round(100 * float(gold.mean()), 4),
                "predicted_yes": int((p_yes > 0.5).sum()),
                "letter_mass_mean": round(float(np.mean([s.values["letter_mass"] for s in mine])), 6),
            })
        return TaskResult(
            headline=headline,
            units=len(scores),
            unit="rows",
            description="accuracy (x100) of Yes = P(Yes) > P(No) against agreement > 0.5 on the published held-out "
                        "split (seeded shuffle 1234, last 10%); an exact tie counts half. expected_accuracy: mean "
                        "probability of the gold answer.",
            counts={"rows": len(scores), **{f"rows_{t['source'].lower()}": t["n"] for t in table}},
            details={"skipped_sources": self.missing, "data": {s: r.to_dict() for s, r in self.reports.items()}},
            tables={"by_source": table},
        )


def make_tasks(options: TaskOptions) -> list[CultureBankTask]:
    """The CultureBank task over the sources whose CSV is found.

    ``options.data`` / ``culturebank_dir``: the folder holding the released CSVs (default
    ``<data root>/culturebank``). Neither file found: :class:`DataNotFound`. ``limit``: a
    seeded sample of that many held-out rows per source.
    """
    settings = options.settings
    folder = Path(options.data or settings.get("culturebank_dir") or data_root(settings) / "culturebank").expanduser()
    files = find_files(folder) if folder.is_dir() else dict.fromkeys(_config()["sources"])
    if not any(files.values()):
        raise DataNotFound(f"data not found at {folder}; {HOW_TO_GET}")
    rows: dict[str, pd.DataFrame] = {}
    reports: dict[str, LoadReport] = {}
    missing: dict[str, str] = {}
    for source, path in files.items():
        if path is None:
            filename = _config()["sources"][source]
            missing[source] = f"{filename} not found under {folder}; {HOW_TO_GET}"
            print(f"warning: CultureBank {source}: {missing[source]}", file=sys.stderr)
            continue
        df, report = load_culturebank(path)
        held_out = _valid_rows(test_split(df), report)
        report.warn()
        rows[source] = held_out.iloc[seeded_subset(len(held_out), options.limit_for("culturebank"), options.seed)]
        reports[source] = report
    return [CultureBankTask(rows, reports, missing)]


def _valid_rows(df: pd.DataFrame, report: LoadReport) -> pd.DataFrame:
    """Held-out rows with a usable agreement and cultural group; the rest counted and dropped."""
    mask, values = [], []
    for rec in df.to_dict("records"):
        where = f"row {rec['row']}"
        try:
            value = parse_agreement(rec["agreement"])
        except ValueError:
            report.drop("missing or malformed agreement", where, f"agreement {rec['agreement']!r}; row dropped")
            mask.append(False)
            continue
        if not str(rec["cultural group"]).strip():
            report.drop("empty cultural group", where, "empty cultural group; row dropped")
            mask.append(False)
            continue
        mask.append(True)
        values.append(value)
    held = df[mask].copy()
    held["agreement_value"] = values
    report.kept = len(held)
    report.notes.append(f"kept = valid rows of the published held-out split ({len(df)} of {report.rows} rows)")
    return held.reset_index(drop=True)
