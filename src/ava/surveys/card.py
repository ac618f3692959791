"""The build's dataset card, ``README.md``: the Hugging Face Hub's YAML header (configs, data files,
features, split sizes, licence) over a human-readable account of how the data was made, all rendered
from the manifest and the written Parquet schemas, so the card is reproducible and is the one place
that describes a build.

``datasets.load_dataset(OUT, "opinionqa")`` reads the questions of a build; the per-group
distributions are the config ``opinionqa-distributions`` (the two tables have different columns, and a
Hub config holds one table shape). Features are written by hand from the Arrow schema rather than by
``datasets``' private ``Features._to_yaml_list`` so that the card's bytes do not change with the
``datasets`` release; the test loads the card with ``datasets`` to keep the two in step.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from ava.surveys.store import DISTRIBUTIONS, QUESTIONS

_SCALAR = {pa.string(): "string", pa.float64(): "float64", pa.bool_(): "bool", pa.uint16(): "uint16",
           pa.int32(): "int32", pa.int64(): "int64"}
_SIZES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
          (10_000_000, "1M<n<10M"))


def _features(schema: pa.Schema) -> list[dict]:
    """Arrow schema -> the Hub's ``dataset_info.features`` list (the form ``datasets`` >= 4 writes)."""
    out = []
    for f in schema:
        if pa.types.is_list(f.type):
            out.append({"name": f.name, "list": _SCALAR[f.type.value_type]})
        else:
            out.append({"name": f.name, "dtype": _SCALAR[f.type]})
    return out


def _configs(manifest: dict, out: Path) -> tuple[list[dict], list[dict], int]:
    """(configs, dataset_info, largest table's rows) for every benchmark the build wrote."""
    configs, infos, largest = [], [], 0
    for name in ("opinionqa", "opinionqa-xl"):
        if name not in manifest["counts"]:
            continue
        for suffix, table in (("", QUESTIONS), ("-distributions", DISTRIBUTIONS)):
            path = out / name / table
            arrow = pq.read_table(path)
            rows = arrow.num_rows
            largest = max(largest, rows)
            config = {"config_name": name + suffix, "data_files": [{"split": "test", "path": f"{name}/{table}"}]}
            if name + suffix == "opinionqa" or (name == "opinionqa-xl" and suffix == "" and
                                                 "opinionqa" not in manifest["counts"]):
                config["default"] = True
            configs.append(config)
            # num_bytes: the table's Arrow size, what ``datasets`` records for a split (it checks only the
            # example count, which makes a truncated or swapped file an error on loading).
            infos.append({"config_name": name + suffix, "features": _features(arrow.schema),
                          "splits": [{"name": "test", "num_bytes": arrow.nbytes, "num_examples": rows}]})
    return configs, infos, largest


def _header(manifest: dict, out: Path) -> str:
    configs, infos, largest = _configs(manifest, out)
    meta = {
        "pretty_name": "Pew ATP survey benchmarks: OpinionQA and OpinionQA-XL",
        "language": ["en"],
        "license": "other",
        "license_name": "pew-research-center-atp-terms",
        "task_categories": ["multiple-choice"],
        "tags": ["surveys", "public-opinion", "pew-research-center", "american-trends-panel", "opinionqa",
                 "pluralistic-alignment"],
        "size_categories": [next(label for bound, label in _SIZES if largest < bound)],
        "configs": configs,
        "dataset_info": infos,
    }
    return "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=1000) + "---\n"


def _fmt(x: float) -> str:
    return f"{x:.4f}" if isinstance(x, float) else str(x)


def _contents(m: dict) -> list[str]:
    compact = m.get("compact")
    lines = [
        "# Pew ATP survey benchmarks: OpinionQA and OpinionQA-XL",
        "",
        "Built by `ava data build-surveys` from the raw Pew American Trends Panel `.sav` files "
        f"(builder {m['builder_version']}, question rules {m['rules']['questions']}, demographic mapping "
        f"{m['rules']['demographics']}, weight rules {m['rules']['weights']}"
        f"{'; compact copy: probabilities to 1/10,000, unweighted counts for OpinionQA only' if compact else ''}"
        f"{'; built from the .sav files alone (--sav-only)' if m.get('sav_only') else ''}).",
        "",
        "## Contents",
        "",
        "| benchmark | questions | configs |",
        "|---|---|---|",
    ]
    lines += [f"| {name} | {n} | `{name}`, `{name}-distributions` |" for name, n in m["counts"].items()]
    lines += [
        "",
        "Each benchmark folder holds `questions.parquet` (one row per question: text, substantive options in "
        "survey order, ordinal positions, non-substantive options, sources, wave, date, topic, tags) and "
        "`distributions.parquet` (one row per question x group: weighted distribution over the substantive "
        "options, refusal rate, respondents, weighted respondents, unweighted counts per option). Groups: "
        "Overall plus OpinionQA's 12 attributes / 60 groups. Join the two on `key`.",
    ]
    if compact:
        lines += ["", "Compact columns: `distribution_e4` and `refusal_rate_e4` are integers of 1/10,000 "
                  "(divide each distribution by its sum), `weighted_n_e2` is hundredths of a weighted respondent."]
    lines += [
        "",
        "```python",
        "from datasets import load_dataset",
        'questions = load_dataset("path/to/build", "opinionqa", split="test")',
        'groups = load_dataset("path/to/build", "opinionqa-distributions", split="test")',
        "# or, with the question objects: ava.surveys.load_benchmark(\"opinionqa\", \"path/to/build\")",
        "```",
    ]
    return lines


def _method(m: dict) -> list[str]:
    return [
        "",
        "## How the numbers are made",
        "",
        "* Distribution D_H(q, G): survey weights of G's respondents summed per substantive option and "
        "renormalised; respondents with a missing answer are dropped, and for a group those whose attribute is "
        "outside the group list. Refusal rate: weighted share of the non-substantive options among answers.",
        "* Weight: one per wave, chosen by Pew's naming (`weights.yaml`): `WEIGHT_W<n>`, else the one full-sample "
        "weight by name (`WEIGHT_W<n>_FINAL`, `WEIGHT_GP`, `WEIGHT`), else the one whose label names it the "
        "full-sample weight, else the wave's only weight unless it is for part of the sample; never a longitudinal, "
        "subgroup, dated, one-form or one-arm weight; a wave where a person could not decide either is refused. "
        f"Waves by rule: {_by_rule(m)}. The table below gives each wave's weight and rule, the manifest "
        "(`waves.*.weight`) the reason and why every other weight column was not used. Waves without a weight are "
        "built unweighted only where declared or allowed, and every question carries the tag `unweighted`: "
        f"{', '.join(m.get('unweighted_waves', [])) or 'none'}.",
        "* opinionqa: exactly OpinionQA's `info.csv` questions, texts, ordered references and ordinals; the "
        "`steer500` tag marks its steering set; `cg:`/`fg:` tags its topics.",
        "* opinionqa-xl: every usable multiple-choice question column of every wave; text from OpinionQA's "
        "info.csv, else the method's `opinionqa-xl.json`, else the cleaned SPSS variable label (`text_source`); "
        "positions curated where OpinionQA has them, else 1..N in code order (`ordinal_source`).",
    ]


def _by_rule(m: dict) -> str:
    return ", ".join(f"{rule} {n}" for rule, n in m.get("weights_by_rule", {}).items()) or "none"


def _waves(m: dict) -> list[str]:
    waves = m.get("waves", {})
    lines = [
        "",
        "## Waves",
        "",
        f"{len(waves)} waves built, {len(m.get('skipped_files', []))} files skipped.",
        "",
        "| wave | questions | weight | weight rule | unmapped attributes |",
        "|---|---|---|---|---|",
    ]
    for w, r in waves.items():
        weight = r.get("weight", {})
        lines.append(f"| {w} | {r.get('questions', 0)} | {weight.get('column') or 'none (unweighted)'} | "
                     f"{weight.get('rule', '-')} | {', '.join(r.get('unmapped_attributes', [])) or '-'} |")
    if m.get("skipped_files"):
        lines += ["", "Skipped files:", ""] + [f"* `{s['file']}`: {s['reason']}" for s in m["skipped_files"]]
    if m.get("warnings"):
        lines += ["", "Warnings:", ""] + [f"* {w}" for w in m["warnings"]]
    return lines


def _checks(m: dict) -> list[str]:
    oqa = m.get("opinionqa")
    if not oqa:
        return []
    lines = ["", "## OpinionQA checks", "",
             f"* questions: {oqa['built']} of {oqa['info_rows']} info.csv rows "
             f"({len(oqa['missing'])} not buildable, listed in the manifest); steer500: {oqa['steer500']}."]
    hb = oqa.get("human_baselines")
    if hb:
        lines.append(f"* human baselines over {hb['n_questions']} non-degenerate questions and {hb['n_groups']} "
                     f"groups: humans average {_fmt(hb['humans_average'])}, humans worst "
                     f"{_fmt(hb['humans_worst'])} ({hb['worst_group']}).")
    ref = oqa.get("reference_counts")
    if ref:
        lines.append(f"* OpinionQA's released unweighted per-group counts reproduced for "
                     f"{ref['pairs_matched']} of {ref['question_attribute_pairs']} (question, attribute) "
                     f"pairs ({ref['questions']} questions) and {ref['cells_matched']} of {ref['group_cells']} "
                     f"group cells; match rate {_fmt(ref['match_rate'])}"
                     + (f"; mismatched pairs by wave/attribute: {ref['mismatched_pairs_by_wave_attribute']} "
                        "(see the manifest for the cells)" if ref.get("mismatched_pairs_by_wave_attribute") else "")
                     + ".")
    else:
        lines.append("* not checked against OpinionQA's released counts (no reference_counts/ folder).")
    return lines


def _terms() -> list[str]:
    return [
        "", "## Licence, attribution and provenance", "",
        "* Survey answers: Pew Research Center American Trends Panel data, free for research use with "
        "attribution under Pew's terms of use (`license: other`). Cite the Pew Research Center's American "
        "Trends Panel and the wave(s) used.",
        "* OpinionQA questions, orderings, steering set and topics: Santurkar et al., \"Whose Opinions Do "
        "Language Models Reflect?\", ICML 2023 (github.com/tatsu-lab/opinions_qa; its terms apply).",
        "* OpinionQA-XL question texts and wave details: the Align-Via-Actions release "
        "(github.com/behavior-in-the-wild/AlignViaActions50M; annotations MIT).",
        "* Source file hashes, every decision per wave (weight, demographic columns, skipped columns and why) "
        "and the checks are in `manifest.json`.",
        "",
    ]


def render_card(manifest: dict, out: str | Path) -> str:
    """The card of a finished build in ``out`` (its Parquet files are read for the schemas and sizes)."""
    body = _contents(manifest) + _method(manifest) + _waves(manifest) + _checks(manifest) + _terms()
    return _header(manifest, Path(out)) + "\n" + "\n".join(body)
