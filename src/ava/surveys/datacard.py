"""A human-readable data card for a build, rendered from its manifest (so it is reproducible)."""

from __future__ import annotations


def _fmt(x: float) -> str:
    return f"{x:.4f}" if isinstance(x, float) else str(x)


def render_datacard(m: dict) -> str:
    waves = m.get("waves", {})
    compact = m.get("compact")
    ok = {w: r for w, r in waves.items() if "error" not in r}
    lines = [
        "# Pew ATP survey benchmarks: OpinionQA and OpinionQA-XL",
        "",
        "Built by `ava data build-surveys` from the raw Pew American Trends Panel `.sav` files "
        f"(builder {m['builder_version']}, question rules {m['rules']['questions']}, demographic mapping "
        f"{m['rules']['demographics']}"
        f"{'; compact copy: probabilities to 1/10,000, unweighted counts for OpinionQA only' if compact else ''}"
        ").",
        "",
        "## Contents",
        "",
        "| benchmark | questions |",
        "|---|---|",
    ]
    lines += [f"| {name} | {n} |" for name, n in m["counts"].items()]
    lines += [
        "",
        "Each benchmark folder holds `questions.parquet` (one row per question: text, substantive options in "
        "survey order, ordinal positions, non-substantive options, sources, wave, date, topic, tags) and "
        "`distributions.parquet` (one row per question x group: weighted distribution over the substantive "
        "options, refusal rate, respondents, weighted respondents, unweighted counts per option). Groups: "
        "Overall plus OpinionQA's 12 attributes / 60 groups.",
        "",
        "## How the numbers are made",
        "",
        "* Distribution D_H(q, G): survey weights of G's respondents summed per substantive option and "
        "renormalised; respondents with a missing answer are dropped, and for a group those whose attribute is "
        "outside the group list. Refusal rate: weighted share of the non-substantive options among answers.",
        "* Weight: the wave's main weight `WEIGHT_W<n>` chosen by rule (see manifest `waves.*.weight`); waves "
        f"without one are built unweighted and every question carries the tag `unweighted`: "
        f"{', '.join(m.get('unweighted_waves', [])) or 'none'}.",
        "* opinionqa: exactly OpinionQA's `info.csv` questions, texts, ordered references and ordinals; the "
        "`steer500` tag marks its steering set; `cg:`/`fg:` tags its topics.",
        "* opinionqa-xl: every usable multiple-choice question column of every wave; text from OpinionQA's "
        "info.csv, else the method's `opinionqa-xl.json`, else the cleaned SPSS variable label (`text_source`); "
        "positions curated where OpinionQA has them, else 1..N in code order (`ordinal_source`).",
        "",
        "## Waves",
        "",
        f"{len(ok)} waves built, {len(waves) - len(ok)} failed, {len(m.get('skipped_files', []))} files skipped.",
        "",
        "| wave | questions | weight | unmapped attributes |",
        "|---|---|---|---|",
    ]
    for w, r in waves.items():
        if "error" in r:
            lines.append(f"| {w} | ERROR | | {r['error']} |")
            continue
        lines.append(f"| {w} | {r['questions']} | {r['weight'].get('column') or 'none (unweighted)'} | "
                     f"{', '.join(r['unmapped_attributes']) or '-'} |")
    if m.get("skipped_files"):
        lines += ["", "Skipped files:", ""] + [f"* `{s['file']}`: {s['reason']}" for s in m["skipped_files"]]
    oqa = m.get("opinionqa")
    if oqa:
        hb = oqa["human_baselines"]
        lines += [
            "", "## OpinionQA checks", "",
            f"* questions: {oqa['built']} of {oqa['info_rows']} info.csv rows "
            f"({len(oqa['missing'])} not buildable, listed in the manifest); steer500: {oqa['steer500']}.",
            f"* human baselines over {hb['n_questions']} non-degenerate questions and {hb['n_groups']} groups: "
            f"humans average {_fmt(hb['humans_average'])}, humans worst {_fmt(hb['humans_worst'])} "
            f"({hb['worst_group']}).",
        ]
        ref = oqa.get("reference_counts")
        if ref:
            lines.append(f"* OpinionQA's released unweighted per-group counts reproduced for "
                         f"{ref['pairs_matched']} of {ref['question_attribute_pairs']} (question, attribute) "
                         f"pairs ({ref['questions']} questions); match rate {_fmt(ref['match_rate'])}"
                         + (f"; mismatched pairs by wave/attribute: {ref['mismatched_pairs_by_wave_attribute']} "
                            "(see the manifest for the cells)" if ref.get("mismatched_pairs_by_wave_attribute") else "")
                         + ".")
    if m.get("errors"):
        lines += ["", "## Errors", ""] + [f"* {e}" for e in m["errors"]]
    lines += ["", "## Provenance and terms", "",
              "Pew Research Center American Trends Panel data (free for research with attribution); OpinionQA "
              "metadata from github.com/tatsu-lab/opinions_qa; question texts and wave details from the "
              "Align-Via-Actions release. Source file hashes are in `manifest.json`.", ""]
    return "\n".join(lines)
