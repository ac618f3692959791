"""Persona texts for steering: OpinionQA's QA / BIO / PORTRAY formats and the AVA format.

OpinionQA's texts are derived from its steer files (``steer-{qa,bio,portray}.csv``) into
the bundled ``opinionqa_personas.json`` by ``python -m ava.evals.prompts.personas DATA_DIR``
(DATA_DIR = the ``opinionqa`` data folder); a test rebuilds it from the real files and
compares. Bundling means steering needs no raw data beyond the survey questions.
The AVA texts come from the factor table in ``opinion_templates.yaml``.
"""

from __future__ import annotations

import ast
import hashlib
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from ava.evals.prompts.opinion import render_options, templates
from ava.models.letters import option_letters
from ava.paths import bundled

FORMATS = ("qa", "bio", "portray")
PERSONAS_FILE = ("evals", "opinionqa_personas.json")


@dataclass(frozen=True)
class Persona:
    """A steering text for one survey group, in one format."""

    format: str
    attribute: str
    group: str
    text: str

    @property
    def key(self) -> str:
        return f"{self.format}:{self.attribute}:{self.group}"


# -- building the bundled OpinionQA personas ------------------------------------------------
def _read_steer(path: Path) -> list[dict[str, Any]]:
    import pandas as pd

    if not path.exists():
        raise FileNotFoundError(f"{path}: steer file not found; pass the OpinionQA data folder (with model_input/)")
    frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    missing = {"question", "md", "subgroup", "options"} - set(frame.columns)
    if missing:
        raise ValueError(f"{path}: missing column(s) {sorted(missing)}")
    return frame.to_dict("records")


def _qa_text(row: dict[str, Any], where: str) -> str:
    options = ast.literal_eval(row["options"])  # a Python-repr list of strings (literal only)
    if row["correct"] not in options:
        raise ValueError(f"{where}: answer {row['correct']!r} is not one of its options {options}")
    letter = option_letters(len(options))[options.index(row["correct"])]
    tpl = templates()["persona_formats"]["qa"]
    return tpl.format(question=row["question"].strip(), options=render_options(options), letter=letter)


def build_opinionqa_personas(data_dir: Path) -> dict[str, Any]:
    """The bundled persona file's content, from ``DATA_DIR/model_input/steer-*.csv``."""
    data_dir = Path(data_dir)
    formats_tpl = templates()["persona_formats"]
    by_group: dict[tuple[str, str], dict[str, str]] = {}
    order: list[tuple[str, str]] = []
    sources: dict[str, str] = {}
    for fmt in FORMATS:
        path = data_dir / "model_input" / f"steer-{fmt}.csv"
        sources[path.name] = hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else ""
        for i, row in enumerate(_read_steer(path)):
            group = (row["md"].strip(), row["subgroup"].strip())
            where = f"{path}:row {i + 1}"
            text = _qa_text(row, where) if fmt == "qa" else formats_tpl[fmt].format(text=row["question"])
            if group not in by_group:
                by_group[group] = {}
                order.append(group)
            if fmt in by_group[group]:
                raise ValueError(f"{where}: group {group} appears twice")
            by_group[group][fmt] = text
    incomplete = {g: sorted(set(FORMATS) - set(f)) for g, f in by_group.items() if set(f) != set(FORMATS)}
    if incomplete:
        raise ValueError(f"groups missing a persona format: {incomplete}")
    return {
        "provenance": {
            "built_by": "python -m ava.evals.prompts.personas <opinionqa data folder>",
            "origin": "OpinionQA steer files (github.com/tatsu-lab/opinions_qa, model_input/steer-*.csv)",
            "sources_sha256": sources,
            "template_version": templates()["version"],
        },
        "personas": [{"attribute": a, "group": g, **by_group[(a, g)]} for a, g in order],
    }


# -- reading personas -----------------------------------------------------------------------
@cache
def _bundled_opinionqa() -> dict[str, Any]:
    import json

    with open(bundled(*PERSONAS_FILE), encoding="utf-8") as fh:
        return json.load(fh)


def opinionqa_personas() -> list[Persona]:
    """OpinionQA's 22 groups x 3 formats, from the bundled file."""
    data = _bundled_opinionqa()
    return [Persona(fmt, p["attribute"], p["group"], p[fmt]) for fmt in FORMATS for p in data["personas"]]


def ava_personas() -> list[Persona]:
    """The AVA format's 9 factors (32 values), each tied to its OpinionQA group."""
    tpl = templates()
    out = []
    for factor in tpl["ava_factors"].values():
        for v in factor["values"]:
            text = tpl["ava_persona"].format(phrase=factor["phrase"], value=v["value"])
            out.append(Persona("ava", v["attribute"], v["group"], text))
    return out


def main(argv: list[str] | None = None) -> None:
    """Rebuild the bundled persona file: ``python -m ava.evals.prompts.personas DATA_DIR``."""
    from ava.io import write_json

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit("usage: python -m ava.evals.prompts.personas OPINIONQA_DATA_DIR "
                         "(e.g. ../shared/data/opinionqa)")
    content = build_opinionqa_personas(Path(args[0]))
    write_json(bundled(*PERSONAS_FILE), content)
    print(f"wrote {len(content['personas'])} groups x {len(FORMATS)} formats to {bundled(*PERSONAS_FILE)}")


if __name__ == "__main__":
    main()
