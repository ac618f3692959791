"""Survey build speed: ava's parallel, column-selective builder vs a naive single-process build.

In one run, on the real Pew ATP waves:

* naive -- one process; reads every column of each wave; for every question and every one of the
           61 groups filters the frame with pandas and sums weights per answer with ``groupby``
           (the way the published scripts tally);
* ava   -- ``build_surveys`` (metadata-only read to choose columns, ``usecols`` read, one
           ``numpy.bincount`` per attribute and question), with 1 worker and with N workers; its time
           includes assembly, Parquet writing, the manifest, the baselines and the reference check.

Naive and ava run on the same waves (default: OpinionQA's 15) and their distributions are
compared; ava also times the full build of every wave. Usage:

    python perf/build_surveys.py [--workers 2] [--naive-waves W26,W27,...|all]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pyreadstat

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("AVA_SHARED_DATA", ROOT.parent / "shared" / "data"))
OQA_WAVES = "W26,W27,W29,W32,W34,W36,W41,W42,W43,W45,W49,W50,W54,W82,W92"


def naive_build(waves) -> dict[str, np.ndarray]:
    """Overall + per-group weighted distributions of every question, the slow obvious way."""
    from ava.surveys.demographics import group_index, map_demographics
    from ava.surveys.questions import select_questions
    from ava.surveys.rules import demographic_rules, question_rules
    from ava.surveys.weights import choose_weight

    qrules, drules = question_rules(), demographic_rules()
    out: dict[str, np.ndarray] = {}
    for wf in waves:
        df, meta = pyreadstat.read_sav(str(wf.path))  # every column
        questions, _ = select_questions(meta, qrules)
        mappings = map_demographics(meta, drules, qrules.is_non_substantive, wf.wave)
        weight = choose_weight(list(meta.column_names), wf.wave).column
        df["_w"] = df[weight].fillna(0.0).clip(lower=0.0) if weight else 1.0
        masks = [np.ones(len(df), dtype=bool)]
        for m in mappings:
            gi, _ = group_index(m, df)
            masks += [gi == g for g in range(len(m.groups))]
        for q in questions:
            answered = df[q.column].notna()
            if answered.sum() == 0:
                continue
            subst = [c for c, s in zip(q.codes, q.substantive, strict=True) if s]
            rows = []
            for mask in masks:
                sub = df.loc[answered & mask, [q.column, "_w"]]
                sums = sub.groupby(q.column)["_w"].sum()
                vec = np.array([sums.get(c, 0.0) for c in subst])
                rows.append(vec / vec.sum() if vec.sum() > 0 else np.zeros(len(subst)))
            out[q.column] = np.array(rows)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pew-dir", type=Path, default=DATA / "pew-atp" / "PEW_ATP_Cleaned")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--naive-waves", default=OQA_WAVES, help="comma-separated waves, or 'all'")
    args = ap.parse_args()

    from ava.surveys.build import build_surveys
    from ava.surveys.discovery import discover

    all_waves, _ = discover(args.pew_dir)
    wanted = None if args.naive_waves == "all" else set(args.naive_waves.split(","))
    subset = [w for w in all_waves if wanted is None or w.wave in wanted]
    names = [w.wave for w in subset]
    rows = []

    t = time.perf_counter()
    naive = naive_build(subset)
    t_naive = time.perf_counter() - t
    rows.append(("naive: 1 process, all columns, pandas per group", len(subset), len(naive), t_naive))

    built = {}
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (1, args.workers):
            t = time.perf_counter()
            res = build_surveys(args.pew_dir, Path(tmp) / f"sub{workers}", waves=names, workers=workers,
                                restart=True, progress=False, log=lambda s: None)
            dt = time.perf_counter() - t
            built = {q.key: q for q in res.benchmarks["opinionqa-xl"]}
            rows.append((f"ava: {workers} worker(s), usecols, bincount", len(subset), len(built), dt))
        t = time.perf_counter()
        full = build_surveys(args.pew_dir, Path(tmp) / "full", workers=args.workers, restart=True, progress=False,
                             log=lambda s: None)
        t_full = time.perf_counter() - t
    if not full.complete:
        raise SystemExit(f"the full build is incomplete: {full.errors[:3]}")

    # Same numbers? (ava keeps OpinionQA's curated options for its questions: compare the others.)
    diffs = []
    for key, mat in naive.items():
        q = built.get(key)
        if q is None or q.ordinal_source != "codes":
            continue
        ours = np.array([g.distribution if g.distribution else np.zeros(len(q.options)) for g in q.groups])
        diffs.append(float(np.abs(ours - mat).max()))

    print(f"\nSurvey build on {len(subset)} waves ({', '.join(names[:3])}, ...), {args.workers} workers max\n")
    print(f"| {'method':<50} | waves | questions | seconds | speed-up vs naive |")
    print(f"|{'-' * 52}|-------|-----------|---------|-------------------|")
    for name, nw, nq, sec in rows:
        print(f"| {name:<50} | {nw:>5} | {nq:>9} | {sec:>7.1f} | {t_naive / sec:>16.1f}x |")
    nfull = len(full.benchmarks["opinionqa-xl"])
    print(f"| {'ava: full build, every wave (' + str(args.workers) + ' workers)':<50} | "
          f"{len(full.manifest['waves']):>5} | {nfull:>9} | {t_full:>7.1f} | {'-':>17} |")
    print(f"\nnaive vs ava distributions: {len(diffs)} questions compared, max |diff| = "
          f"{max(diffs) if diffs else float('nan'):.2e}")


if __name__ == "__main__":
    main()
