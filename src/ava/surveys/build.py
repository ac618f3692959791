"""Build the OpinionQA and OpinionQA-XL benchmarks from a directory of raw Pew ATP ``.sav`` files.

Waves are processed in parallel (one process per wave, only the needed columns read); each wave's
tallies are cached under ``<out>/.cache`` keyed by the file and the rule versions, so an
interrupted build resumes. Outputs: ``<out>/opinionqa/``, ``<out>/opinionqa-xl/`` (Parquet),
``<out>/manifest.json`` (written last; ``complete: true`` marks a finished build) and
``<out>/DATACARD.md``. The same inputs give byte-identical outputs.
"""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import os
import pickle
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from ava.contracts.surveys import SurveyQuestion
from ava.io import atomic_write, file_sha256, write_json
from ava.paths import bundled
from ava.surveys import assemble
from ava.surveys.baselines import human_baselines
from ava.surveys.curated import (
    OpinionQA,
    WaveDetails,
    date_from_folder,
    load_opinionqa,
    load_survey_details,
    load_xl_questions,
)
from ava.surveys.datacard import render_datacard
from ava.surveys.discovery import WaveFile, discover
from ava.surveys.questions import wave_of_column
from ava.surveys.reference import compare_reference
from ava.surveys.rules import demographic_rules, question_rules
from ava.surveys.store import write_benchmark
from ava.surveys.wave import WaveResult, process_wave

BUILDER_VERSION = "1"
BENCHMARKS = ("opinionqa", "opinionqa-xl")


@dataclass
class BuildResult:
    out: Path
    manifest: dict
    benchmarks: dict[str, list[SurveyQuestion]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def _rules_fingerprint() -> str:
    """Rule tables plus the code that applies them: a change to either invalidates the wave cache."""
    h = hashlib.sha256(BUILDER_VERSION.encode())
    for name in ("questions.yaml", "demographics.yaml"):
        h.update(bundled("surveys", name).read_bytes())
    here = Path(__file__).parent
    for module in ("wave.py", "questions.py", "demographics.py", "weights.py", "rules.py", "discovery.py"):
        h.update((here / module).read_bytes())
    return h.hexdigest()


def _cache_path(cache: Path, wf: WaveFile, fingerprint: str) -> Path:
    st = wf.path.stat()
    key = hashlib.sha256(f"{wf.path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{fingerprint}".encode()).hexdigest()
    return cache / f"{wf.wave}-{key[:16]}.pkl"


def _process_all(waves: list[WaveFile], cache: Path | None, workers: int, progress: bool) -> list[WaveResult]:
    fingerprint = _rules_fingerprint()
    results: dict[str, WaveResult] = {}
    todo: list[WaveFile] = []
    for wf in waves:
        cp = _cache_path(cache, wf, fingerprint) if cache else None
        if cp and cp.is_file():
            with open(cp, "rb") as fh:
                results[wf.wave] = pickle.load(fh)
        else:
            todo.append(wf)
    bar = tqdm(total=len(waves), initial=len(results), desc="waves", unit="wave", disable=not progress,
               dynamic_ncols=True)

    def keep(res: WaveResult, wf: WaveFile) -> None:
        results[res.wave] = res
        if cache and res.error is None:
            with atomic_write(_cache_path(cache, wf, fingerprint), "wb") as fh:
                pickle.dump(res, fh, protocol=pickle.HIGHEST_PROTOCOL)
        bar.set_postfix_str(f"{res.wave}: {len(res.questions)} questions")
        bar.update(1)

    by_wave = {wf.wave: wf for wf in todo}
    if workers <= 1 or len(todo) <= 1:
        for wf in todo:
            keep(process_wave(wf), wf)
    else:
        # Largest files first so the slowest waves do not start last.
        todo.sort(key=lambda wf: -wf.path.stat().st_size)
        with mp.get_context("spawn").Pool(min(workers, len(todo))) as pool:
            for res in pool.imap_unordered(process_wave, todo):
                keep(res, by_wave[res.wave])
    bar.close()
    return [results[wf.wave] for wf in waves]


def _relative(path: str | Path, root: Path) -> str:
    try:
        return Path(path).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return Path(path).name


def _find_near(pew_dir: Path, name: str) -> Path | None:
    """``name`` beside or above the wave folder (shared/data: pew-atp/PEW_ATP_Cleaned, pew-atp/questions,
    opinionqa/)."""
    for base in (pew_dir, pew_dir.parent, pew_dir.parent.parent):
        if (base / name).is_dir():
            return base / name
    return None


def default_workers() -> int:
    return max(1, min(mp.cpu_count(), 8))


def build_surveys(
    pew_dir: str | Path,
    out: str | Path,
    *,
    opinionqa_dir: str | Path | None = None,
    questions_dir: str | Path | None = None,
    workers: int | None = None,
    waves: Collection[str] | None = None,
    compact: bool = False,
    resume: bool = True,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> BuildResult:
    """Build both benchmarks from ``pew_dir`` into ``out``; see the module docstring.

    ``opinionqa_dir`` / ``questions_dir`` default to an ``opinionqa`` / ``questions`` folder beside the
    wave folder or up to two levels above it (the layout of ``shared/data``); without OpinionQA's
    files the ``opinionqa`` benchmark is not built and the manifest says so. ``waves`` restricts the
    build to some waves (the manifest records the restriction). ``compact`` quantises
    probabilities to 1e-4 (the bundled copy; see ``store.write_benchmark``).
    """
    pew_dir, out = Path(pew_dir), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "manifest.json").unlink(missing_ok=True)  # a partial build never looks complete
    if opinionqa_dir is None:
        opinionqa_dir = _find_near(pew_dir, "opinionqa")
    if questions_dir is None:
        questions_dir = _find_near(pew_dir, "questions")
    errors: list[str] = []
    if not pew_dir.is_dir():
        raise FileNotFoundError(f"{pew_dir}: no such directory; pass the folder holding the Pew ATP .sav files")

    wave_files, skipped = discover(pew_dir)
    if waves is not None:
        wanted = {w if w.upper().startswith("W") else f"W{w}" for w in waves}
        wave_files = [w for w in wave_files if w.wave in wanted]
    if not wave_files:
        errors.append(f"{pew_dir}: no Pew ATP wave files ('ATP W<n>.sav') found; point --pew-dir at the "
                      "unpacked download")

    curated_files: list[Path] = []
    oqa: OpinionQA | None = None
    if opinionqa_dir is not None and Path(opinionqa_dir).is_dir():
        oqa = load_opinionqa(opinionqa_dir)
        curated_files += list(oqa.files)
    else:
        errors.append("OpinionQA metadata (human_resp/*/info.csv) not found: the 'opinionqa' benchmark is not "
                      "built; pass --opinionqa-dir")
    xl_json: dict = {}
    details: dict[str, WaveDetails] = {}
    if questions_dir is not None:
        qd = Path(questions_dir)
        if (qd / "opinionqa-xl.json").is_file():
            xl_json = load_xl_questions(qd / "opinionqa-xl.json")
            curated_files.append(qd / "opinionqa-xl.json")
        if (qd / "survey-details.json").is_file():
            details = load_survey_details(qd / "survey-details.json")
            curated_files.append(qd / "survey-details.json")

    workers = workers or default_workers()
    log(f"building from {len(wave_files)} wave files with {workers} workers"
        + (f" ({len(skipped)} files skipped)" if skipped else ""))
    cache = out / ".cache" if resume else None
    results = _process_all(wave_files, cache, workers, progress)

    group_keys = tuple(demographic_rules().group_keys())

    def oqa_wave_rows(wave: str) -> list:
        return oqa.questions.get(wave, []) if oqa else []

    def oqa_uids(wave: str) -> list[str]:
        # OpinionQA reuses a column for several question texts (IDIMPORT_W43: "being white",
        # "being black", ...): the first keeps the column as key, later ones get "#2", "#3", ...
        seen: Counter[str] = Counter()
        out = []
        for r in oqa_wave_rows(wave):
            seen[r.key] += 1
            out.append(r.key if seen[r.key] == 1 else f"{r.key}#{seen[r.key]}")
        return out

    built_oqa: dict[str, SurveyQuestion] = {}
    missing_oqa: dict[str, str] = {}
    xl: list[SurveyQuestion] = []
    wave_reports: dict[str, dict] = {}
    xl_skipped_total: Counter[str] = Counter()
    for res in results:
        report: dict = {
            "file": _relative(res.path, pew_dir), "sha256": res.sha256, "bytes": res.size, "kind": res.kind,
            "folder": res.folder, "rows": res.n_rows, "columns": res.n_columns,
        }
        if res.error:
            errors.append(res.error)
            report["error"] = res.error
            wave_reports[res.wave] = report
            continue
        weighted = res.weight.get("column") is not None
        ctx = assemble.Context(res.wave, weighted, details.get(res.wave), date_from_folder(res.folder), group_keys)
        raw_by_col = {q.column: q for q in res.questions}
        for row, uid in zip(oqa_wave_rows(res.wave), oqa_uids(res.wave), strict=True):
            raw = raw_by_col.get(row.key)
            if raw is None:
                why = res.skipped_columns.get(row.key, "column not in the .sav file")
                missing_oqa[uid] = f"{res.wave}: {why}"
                continue
            q, why = assemble.from_opinionqa(raw, row, ctx, oqa.steer500, oqa.topics, uid)
            if q is None:
                missing_oqa[uid] = why or "unknown"
            else:
                built_oqa[uid] = q
        n_xl, xl_skipped = 0, Counter()
        for raw in res.questions:
            other = wave_of_column(raw.column)
            if other and other != res.wave.upper():
                # Answers merged in from another wave (SATLIFEC_W28 inside the W29 file) belong to
                # that wave's sample and weight: OpinionQA-XL takes them from their own wave (OpinionQA
                # itself keeps three such W53 columns of the W54 file).
                q, why = None, f"column from another wave ({other}), merged in for longitudinal analysis"
            elif raw.column in built_oqa and built_oqa[raw.column].wave == res.wave:
                q, why = assemble.xl_from_opinionqa(built_oqa[raw.column]), None
            else:
                q, why = assemble.from_raw(raw, ctx, assemble.xl_entry_for(xl_json, res.wave, raw.column))
            if q is None:
                res.skipped_columns[raw.column] = why or "unknown"
                xl_skipped[why] += 1
                continue
            xl.append(q)
            n_xl += 1
        reasons = Counter(res.skipped_columns.values())
        xl_skipped_total.update(reasons)
        report.update({
            "questions": n_xl,
            "opinionqa_questions": sum(1 for uid in oqa_uids(res.wave) if uid in built_oqa),
            "text_sources": dict(Counter(q.text_source for q in xl if q.wave == res.wave)),
            "weight": res.weight, "weighted": weighted,
            "demographics": res.demographics, "unmapped_attributes": res.unmapped_attributes,
            "unlabelled_answers_dropped": int(sum(q.unlabelled for q in res.questions)),
            "skipped_columns_by_reason": dict(sorted(reasons.items())),
            "skipped_columns": dict(sorted(res.skipped_columns.items())),
        })
        if not weighted:
            log(f"warning: {res.wave}: {res.weight.get('rule')}; its questions are flagged 'unweighted'")
        if res.unmapped_attributes:
            log(f"note: {res.wave}: attributes not mapped: {', '.join(res.unmapped_attributes)}")
        if not res.questions:
            report["no_questions_reason"] = "no multiple-choice question columns"
        wave_reports[res.wave] = report

    oqa_questions = [built_oqa[uid] for w in sorted(oqa.questions, key=lambda w: float(w[1:]))
                     for uid in oqa_uids(w) if uid in built_oqa] if oqa else []
    benchmarks = {"opinionqa-xl": xl}
    if oqa:
        benchmarks["opinionqa"] = oqa_questions
    for name in BENCHMARKS:
        if name not in benchmarks:  # never leave a stale benchmark from an earlier build beside this one
            for stale in (out / name).glob("*.parquet"):
                stale.unlink()
    for name, qs in benchmarks.items():
        # The compact copy keeps unweighted counts only for OpinionQA (checked against its release).
        write_benchmark(out / name, qs, compact=compact, counts=not compact or name == "opinionqa")

    manifest: dict = {
        "builder_version": BUILDER_VERSION,
        "rules": {"questions": question_rules().version, "demographics": demographic_rules().version,
                  "fingerprint": _rules_fingerprint()},
        "compact": compact,
        "waves_requested": sorted(waves) if waves is not None else "all",
        "sources": {
            "pew_dir_files": len(wave_files),
            "curated": {_relative(p, pew_dir.parent): file_sha256(p) for p in curated_files},
        },
        "skipped_files": [{"file": _relative(s.path, pew_dir), "reason": s.reason} for s in skipped],
        "waves": wave_reports,
        "groups": [list(k) for k in group_keys],
        "errors": errors,
        "counts": {name: len(qs) for name, qs in sorted(benchmarks.items())},
        "xl_text_sources": dict(sorted(Counter(q.text_source for q in xl).items())),
        "columns_skipped_by_reason": dict(sorted(xl_skipped_total.items())),
        "unweighted_waves": sorted((w for w, r in wave_reports.items() if r.get("weighted") is False),
                                   key=lambda w: float(w[1:])),
    }
    if oqa:
        expected = sum(len(v) for k, v in oqa.questions.items() if waves is None or k in manifest["waves"])
        manifest["opinionqa"] = {
            "info_rows": expected, "built": len(oqa_questions),
            "steer500": sum("steer500" in q.tags for q in oqa_questions),
            "steer500_in_info": oqa.steer500_rows,
            "degenerate_ordinals": sum("degenerate-ordinal" in q.tags for q in oqa_questions),
            "with_topic": sum(any(t.startswith("cg:") for t in q.tags) for q in oqa_questions),
            "missing": dict(sorted(missing_oqa.items())),
            "human_baselines": human_baselines(oqa_questions),
        }
        ref_dir = Path(opinionqa_dir) / "reference_counts"
        if ref_dir.is_dir():
            manifest["opinionqa"]["reference_counts"] = compare_reference(oqa_questions, ref_dir).summary()
    manifest["ok"] = not errors
    manifest["complete"] = True  # written last: everything above finished
    with atomic_write(out / "DATACARD.md") as fh:
        fh.write(render_datacard(manifest))
    write_json(out / "manifest.json", manifest)
    for name in ("DATACARD.md", "manifest.json"):
        os.chmod(out / name, 0o644)
    return BuildResult(out, manifest, benchmarks, errors)
