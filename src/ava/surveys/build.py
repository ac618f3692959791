"""Build the OpinionQA and OpinionQA-XL benchmarks from a directory of raw Pew ATP ``.sav`` files.

Inputs and the output folder are checked first (``preflight``). Waves are then processed in parallel
(one process per wave, only the needed columns read); each wave's tallies are cached under
``<out>/.cache`` keyed by the file and the rule versions, so an interrupted build resumes. Outputs:
``<out>/opinionqa/``, ``<out>/opinionqa-xl/`` (Parquet), ``<out>/README.md`` (the dataset card, with
the Hugging Face Hub's YAML header) and ``<out>/manifest.json`` (the data's description). The build
fails closed: a wave that could not be read, whose demographics map to no group, or that has no weight the
rules know makes it ``complete: false`` with the reasons, and then only the manifest is written. The
same inputs give byte-identical outputs.

Why one module of ~410 lines: the driver, the per-wave pool, the assembly of both benchmarks and the
manifest share one accumulator and one notion of "complete"; the parts that stand alone (discovery,
preflight, weights, demographics, the store, the card) are modules of their own.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import pickle
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from ava.contracts.surveys import SurveyQuestion
from ava.io import atomic_write, file_sha256, write_json
from ava.paths import bundled
from ava.runs import Binding
from ava.surveys import assemble
from ava.surveys.baselines import baselines_summary
from ava.surveys.card import render_card
from ava.surveys.curated import date_from_folder
from ava.surveys.discovery import WaveFile
from ava.surveys.preflight import BuildInputs, preflight
from ava.surveys.questions import wave_of_column
from ava.surveys.reference import compare_reference
from ava.surveys.rules import demographic_rules, question_rules, weight_rules
from ava.surveys.store import BENCHMARKS, KIND, SurveyBuild, write_benchmark
from ava.surveys.wave import WaveResult, process_wave
from ava.surveys.weights import check_named, parse_named, weight_error

BUILDER_VERSION = "2"
"""What a build writes in ``out`` besides its run record: refused without one, removed by ``--restart``."""
LEGACY_OUTPUTS = ("DATACARD.md",)  # written by builder 1; the data card is README.md now


@dataclass
class BuildResult:
    out: Path
    manifest: dict
    benchmarks: dict[str, list[SurveyQuestion]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return bool(self.manifest.get("complete"))


def _rules_fingerprint() -> str:
    """Rule tables plus the code that applies them: a change to either invalidates the wave cache."""
    h = hashlib.sha256(BUILDER_VERSION.encode())
    for name in ("questions.yaml", "demographics.yaml", "weights.yaml"):
        h.update(bundled("surveys", name).read_bytes())
    here = Path(__file__).parent
    for module in ("wave.py", "questions.py", "demographics.py", "weights.py", "rules.py", "discovery.py"):
        h.update((here / module).read_bytes())
    return h.hexdigest()


def _cache_path(cache: Path, wf: WaveFile, fingerprint: str, weight: str | None) -> Path:
    st = wf.path.stat()
    named = f"|weight={weight}" if weight is not None else ""  # a wave's --weight changes its tallies
    key = hashlib.sha256(f"{wf.path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{fingerprint}{named}".encode())
    return cache / f"{wf.wave}-{key.hexdigest()[:16]}.pkl"


def _process_task(task: tuple[WaveFile, str | None]) -> WaveResult:
    return process_wave(*task)


def _process_all(waves: list[WaveFile], cache: Path, workers: int, progress: bool,
                 weights: dict[str, str]) -> list[WaveResult]:
    fingerprint = _rules_fingerprint()
    results: dict[str, WaveResult] = {}
    todo: list[WaveFile] = []
    for wf in waves:
        cp = _cache_path(cache, wf, fingerprint, weights.get(wf.wave))
        if cp.is_file():
            try:
                with open(cp, "rb") as fh:
                    results[wf.wave] = pickle.load(fh)
                continue
            except Exception:  # noqa: BLE001 - a damaged cache entry is only a lost shortcut: redo the wave
                cp.unlink(missing_ok=True)
        todo.append(wf)
    bar = tqdm(total=len(waves), initial=len(results), desc="waves", unit="wave", disable=not progress,
               dynamic_ncols=True)

    def keep(res: WaveResult, wf: WaveFile) -> None:
        results[res.wave] = res
        if res.error is None:
            with atomic_write(_cache_path(cache, wf, fingerprint, weights.get(wf.wave)), "wb") as fh:
                pickle.dump(res, fh, protocol=pickle.HIGHEST_PROTOCOL)
        bar.set_postfix_str(f"{res.wave}: {len(res.questions)} questions")
        bar.update(1)

    by_wave = {wf.wave: wf for wf in todo}
    if workers <= 1 or len(todo) <= 1:
        for wf in todo:
            keep(process_wave(wf, weights.get(wf.wave)), wf)
    else:
        # Largest files first so the slowest waves do not start last.
        todo.sort(key=lambda wf: -wf.path.stat().st_size)
        with mp.get_context("spawn").Pool(min(workers, len(todo))) as pool:
            for res in pool.imap_unordered(_process_task, [(wf, weights.get(wf.wave)) for wf in todo]):
                keep(res, by_wave[res.wave])
    bar.close()
    return [results[wf.wave] for wf in waves]


def _relative(path: str | Path, root: Path) -> str:
    try:
        return Path(path).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return Path(path).name


def default_workers() -> int:
    return max(1, min(mp.cpu_count(), 8))


@dataclass
class _Assembly:
    """Both benchmarks as they are assembled wave by wave, with what went wrong on the way."""

    built_oqa: dict[str, SurveyQuestion] = field(default_factory=dict)
    missing_oqa: dict[str, str] = field(default_factory=dict)
    xl: list[SurveyQuestion] = field(default_factory=list)
    wave_reports: dict[str, dict] = field(default_factory=dict)
    xl_skipped: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _oqa_uids(inputs: BuildInputs, wave: str) -> list[str]:
    """OpinionQA reuses a column for several question texts (IDIMPORT_W43: "being white", "being
    black", ...): the first keeps the column as key, later ones get "#2", "#3", ..."""
    seen: Counter[str] = Counter()
    uids = []
    for r in inputs.oqa.questions.get(wave, []) if inputs.oqa else []:
        seen[r.key] += 1
        uids.append(r.key if seen[r.key] == 1 else f"{r.key}#{seen[r.key]}")
    return uids


def _wave_problems(res: WaveResult, allow_unweighted: bool) -> tuple[list[str], list[str]]:
    """(errors, warnings) of one processed wave: an error makes the build incomplete."""
    if res.error:
        return [res.error], []
    errors = [f"{res.path}: {res.wave} demographics cannot be mapped: {why}; add its labels to the demographic "
              "rules (ava/data/surveys/demographics.yaml)" for why in res.unmappable]
    warnings = []
    if res.weight.get("column") is None:
        declared = weight_rules().unweighted.get(res.wave)
        if declared or allow_unweighted:
            warnings.append(f"{res.wave}: built unweighted ({declared or '--allow-unweighted'}: "
                            f"{res.weight['reason']}); its questions are tagged 'unweighted'")
        else:
            errors.append(weight_error(res.path, res.wave, res.weight))
    for att, report in res.demographics.items():
        if report.get("unmapped_labels") and report.get("mapped_groups"):  # else an error above
            warnings.append(f"{res.wave}: {report.get('respondents_with_unmapped_label', 0)} respondents left out of "
                            f"{att}: labels no group takes ({'; '.join(report['unmapped_labels'])})")
    return errors, warnings


def _assemble_oqa(res: WaveResult, inputs: BuildInputs, ctx: assemble.Context, acc: _Assembly) -> None:
    raw_by_col = {q.column: q for q in res.questions}
    rows = inputs.oqa.questions.get(res.wave, []) if inputs.oqa else []
    for row, uid in zip(rows, _oqa_uids(inputs, res.wave), strict=True):
        raw = raw_by_col.get(row.key)
        if raw is None:
            why = res.skipped_columns.get(row.key, "column not in the .sav file")
            acc.missing_oqa[uid] = f"{res.wave}: {why}"
            continue
        q, why = assemble.from_opinionqa(raw, row, ctx, inputs.oqa.steer500, inputs.oqa.topics, uid)
        if q is None:
            acc.missing_oqa[uid] = why or "unknown"
        else:
            acc.built_oqa[uid] = q


def _assemble_xl(res: WaveResult, inputs: BuildInputs, ctx: assemble.Context, acc: _Assembly) -> int:
    n_xl = 0
    for raw in res.questions:
        other = wave_of_column(raw.column)
        if other and other != res.wave.upper():
            # Answers merged in from another wave (SATLIFEC_W28 inside the W29 file) belong to that wave's
            # sample and weight: OpinionQA-XL takes them from their own wave (OpinionQA itself keeps three
            # such W53 columns of the W54 file).
            q, why = None, f"column from another wave ({other}), merged in for longitudinal analysis"
        elif raw.column in acc.built_oqa and acc.built_oqa[raw.column].wave == res.wave:
            q, why = assemble.xl_from_opinionqa(acc.built_oqa[raw.column]), None
        else:
            q, why = assemble.from_raw(raw, ctx, assemble.xl_entry_for(inputs.xl_json, res.wave, raw.column))
        if q is None:
            res.skipped_columns[raw.column] = why or "unknown"
            continue
        acc.xl.append(q)
        n_xl += 1
    return n_xl


def _assemble(results: list[WaveResult], inputs: BuildInputs, pew_dir: Path, allow_unweighted: bool,
              log: Callable[[str], None]) -> _Assembly:
    acc = _Assembly()
    group_keys = tuple(demographic_rules().group_keys())
    for res in results:
        report: dict = {
            "file": _relative(res.path, pew_dir), "sha256": res.sha256, "bytes": res.size, "kind": res.kind,
            "folder": res.folder, "rows": res.n_rows, "columns": res.n_columns,
        }
        acc.wave_reports[res.wave] = report
        errors, warnings = _wave_problems(res, allow_unweighted)
        acc.errors += errors
        acc.warnings += warnings
        if res.error:
            report["error"] = res.error
            continue
        weighted = res.weight.get("column") is not None
        ctx = assemble.Context(res.wave, weighted, inputs.details.get(res.wave), date_from_folder(res.folder),
                               group_keys)
        _assemble_oqa(res, inputs, ctx, acc)
        n_xl = _assemble_xl(res, inputs, ctx, acc)
        reasons = Counter(res.skipped_columns.values())
        acc.xl_skipped.update(reasons)
        report.update({
            "questions": n_xl,
            "opinionqa_questions": sum(1 for uid in _oqa_uids(inputs, res.wave) if uid in acc.built_oqa),
            "text_sources": dict(Counter(q.text_source for q in acc.xl if q.wave == res.wave)),
            "weight": res.weight, "weighted": weighted,
            "demographics": res.demographics, "unmapped_attributes": res.unmapped_attributes,
            "unusable": errors,
            "unlabelled_answers_dropped": int(sum(q.unlabelled for q in res.questions)),
            "skipped_columns_by_reason": dict(sorted(reasons.items())),
            "skipped_columns": dict(sorted(res.skipped_columns.items())),
        })
        if res.unmapped_attributes:
            log(f"note: {res.wave}: attributes not mapped: {', '.join(res.unmapped_attributes)}")
        if not res.questions:
            report["no_questions_reason"] = "no multiple-choice question columns"
    for line in acc.warnings:
        log(f"warning: {line}")
    return acc


def _opinionqa_report(inputs: BuildInputs, acc: _Assembly, questions: list[SurveyQuestion], waves) -> dict:
    oqa = inputs.oqa
    report = {
        "info_rows": sum(len(v) for k, v in oqa.questions.items() if waves is None or k in acc.wave_reports),
        "built": len(questions),
        "steer500": sum("steer500" in q.tags for q in questions),
        "steer500_in_info": oqa.steer500_rows,
        "degenerate_ordinals": sum("degenerate-ordinal" in q.tags for q in questions),
        "with_topic": sum(any(t.startswith("cg:") for t in q.tags) for q in questions),
        "missing": dict(sorted(acc.missing_oqa.items())),
        # Baselines and the reference check describe a finished benchmark: not computed for a broken one.
        "human_baselines": baselines_summary(questions) if questions and not acc.errors else None,
    }
    if inputs.reference is not None and not acc.errors:
        # A build of some waves is checked on the released counts of those waves only.
        reference = [r for r in inputs.reference if waves is None
                     or r[0].parent.name.rsplit("_", 1)[-1].upper() in acc.wave_reports]
        report["reference_counts"] = compare_reference(questions, reference).summary()
    return report


def _manifest(inputs: BuildInputs, acc: _Assembly, benchmarks: dict[str, list[SurveyQuestion]], pew_dir: Path,
              waves, compact: bool, sav_only: bool) -> dict:
    manifest: dict = {
        "builder_version": BUILDER_VERSION,
        "rules": {"questions": question_rules().version, "demographics": demographic_rules().version,
                  "weights": weight_rules().version, "fingerprint": _rules_fingerprint()},
        "compact": compact,
        "sav_only": sav_only,
        "waves_requested": sorted(waves) if waves is not None else "all",
        "sources": {
            "pew_dir_files": len(inputs.wave_files),
            "curated": {name: file_sha256(p) for name, p in sorted(inputs.curated_files.items())},
        },
        "skipped_files": [{"file": _relative(s.path, pew_dir), "reason": s.reason} for s in inputs.skipped],
        "waves": acc.wave_reports,
        "groups": [list(k) for k in demographic_rules().group_keys()],
        "errors": acc.errors,
        "warnings": inputs.warnings + acc.warnings,
        "counts": {name: len(qs) for name, qs in sorted(benchmarks.items())},
        "xl_text_sources": dict(sorted(Counter(q.text_source for q in acc.xl).items())),
        "columns_skipped_by_reason": dict(sorted(acc.xl_skipped.items())),
        "weights_by_rule": dict(sorted(Counter(r["weight"]["rule"] for r in acc.wave_reports.values()
                                               if "weight" in r).items())),
        "unweighted_waves": sorted((w for w, r in acc.wave_reports.items() if r.get("weighted") is False),
                                   key=lambda w: float(w[1:])),
    }
    if inputs.oqa:
        manifest["opinionqa"] = _opinionqa_report(inputs, acc, benchmarks["opinionqa"], waves)
    return manifest


def build_surveys(
    pew_dir: str | Path,
    out: str | Path,
    *,
    opinionqa_dir: str | Path | None = None,
    questions_dir: str | Path | None = None,
    workers: int | None = None,
    waves: Collection[str] | None = None,
    compact: bool = False,
    restart: bool = False,
    progress: bool = True,
    sav_only: bool = False,
    allow_unweighted: bool = False,
    weights: Mapping[str, str] | list[str] | None = None,
    log: Callable[[str], None] = print,
) -> BuildResult:
    """Build both benchmarks from ``pew_dir`` into ``out``; see the module docstring.

    ``opinionqa_dir`` / ``questions_dir`` default to an ``opinionqa`` / ``questions`` folder beside the
    wave folder or up to two levels above it (the layout of ``shared/data``); both are required unless
    ``sav_only`` (OpinionQA-XL from the .sav files alone). ``waves`` restricts the build to some waves
    (the manifest records the restriction). ``compact`` quantises probabilities to 1e-4 (the bundled
    copy; see ``store.write_benchmark``). ``allow_unweighted`` builds waves without a known weight
    unweighted instead of failing. ``weights`` names the weight column of some waves ({"W26":
    "WEIGHT_W26"} or ["W26=WEIGHT_W26"]: a person's decision overrides the rules). ``restart``
    discards what ``out`` holds (the wave cache included).
    Raises ``SurveyInputError`` (before any wave is read) for a bad input or output folder and
    ``ava.runs.RunRefused`` for an output of other inputs or options, or one being written; a build
    that ran but is incomplete has ``complete`` False, the reasons in ``errors``, no benchmark files,
    and a run record that says ``failed`` with the first reason.
    """
    from ava.runs import Output, start_run

    pew_dir, out = Path(pew_dir), Path(out)
    named = parse_named(weights)
    inputs = preflight(pew_dir, out, opinionqa_dir=Path(opinionqa_dir) if opinionqa_dir else None,
                       questions_dir=Path(questions_dir) if questions_dir else None, waves=waves, sav_only=sav_only)
    check_named(named, inputs.wave_files)
    # Not bound: allow_unweighted changes no wave's tallies; it decides whether a wave without a known
    # weight fails the build, and a failed build tells the user to rerun with it. Nor the weights named
    # with --weight, which a failed build also asks for: a wave's cached tallies are keyed by its named
    # weight and every run re-derives the outputs, so results of two choices cannot mix; the manifest
    # records each wave's weight and rule ("named"), the run record's info the option.
    options = {"compact": compact, "sav_only": sav_only, "waves": sorted(waves) if waves is not None else "all"}
    info = {"pew_dir": str(pew_dir.resolve()), "waves": len(inputs.wave_files), "allow_unweighted": allow_unweighted,
            **({"weights": named} if named else {})}
    with start_run(Output(out, folder=True), KIND, binding(inputs, pew_dir, options), restart=restart,
                   owned=SurveyBuild.OWNED, info=info) as run:
        result = _build(inputs, pew_dir, out, workers or default_workers(), waves, compact, sav_only,
                        allow_unweighted, named, progress, log)
        if not result.complete:
            more = f" (and {len(result.errors) - 1} more)" if len(result.errors) > 1 else ""
            run.fail(f"incomplete: {result.errors[0]}{more}")
    return result


def binding(inputs: BuildInputs, pew_dir: Path, options: dict) -> Binding:
    """What a survey build is bound to: which wave files (relative paths) and curated files (sha256) it
    reads, and the options that change its output.

    Why not the wave files' bytes: every run re-derives every output from the current files (the wave
    cache is keyed by each file's size, time and the builder's code), so a wave file fixed after a
    failed build cannot mix with results of its old content, and rerunning resumes as promised.
    """
    files = sorted(_relative(w.path, pew_dir) for w in inputs.wave_files)
    curated = {name: file_sha256(p) for name, p in sorted(inputs.curated_files.items())}
    digest = hashlib.sha256(json.dumps([files, curated], sort_keys=True).encode()).hexdigest()[:16]
    return Binding(inputs=digest, options=options)


def _build(inputs: BuildInputs, pew_dir: Path, out: Path, workers: int, waves: Collection[str] | None,
           compact: bool, sav_only: bool, allow_unweighted: bool, weights: dict[str, str], progress: bool,
           log: Callable[[str], None]) -> BuildResult:
    """Process (or read back) every wave, assemble both benchmarks, write them if nothing went wrong."""
    folder = SurveyBuild(out)
    for path in (folder.manifest, folder.card, *(out / name for name in LEGACY_OUTPUTS)):
        path.unlink(missing_ok=True)  # a partial build never looks complete
    log(f"building from {len(inputs.wave_files)} wave files with {workers} workers"
        + (f" ({len(inputs.skipped)} files skipped)" if inputs.skipped else ""))
    results = _process_all(inputs.wave_files, folder.cache, workers, progress, weights)
    acc = _assemble(results, inputs, pew_dir, allow_unweighted, log)
    benchmarks = {"opinionqa-xl": acc.xl}
    if inputs.oqa:
        benchmarks["opinionqa"] = [acc.built_oqa[uid] for w in sorted(inputs.oqa.questions, key=lambda w: float(w[1:]))
                                   for uid in _oqa_uids(inputs, w) if uid in acc.built_oqa]
    manifest = _manifest(inputs, acc, benchmarks, pew_dir, waves, compact, sav_only)
    manifest["complete"] = not acc.errors
    for name in BENCHMARKS:
        if name not in benchmarks or not manifest["complete"]:
            for stale in folder.benchmark(name).glob("*.parquet"):  # never leave files that look like a finished build
                stale.unlink()
    if manifest["complete"]:
        for name, qs in benchmarks.items():
            # The compact copy keeps unweighted counts only for OpinionQA (checked against its release).
            write_benchmark(folder.benchmark(name), qs, compact=compact, counts=not compact or name == "opinionqa")
        with atomic_write(folder.card) as fh:
            fh.write(render_card(manifest, out))
        os.chmod(folder.card, 0o644)
    write_json(folder.manifest, manifest)  # the data's description (complete or why not)
    os.chmod(folder.manifest, 0o644)
    return BuildResult(out, manifest, benchmarks, acc.errors)
