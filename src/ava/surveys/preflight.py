"""What a survey build checks before its expensive work: the wave files, the curated metadata and the
output folder. Every problem is a ``SurveyInputError`` whose one-line message names the path and what
to do, so a user learns of a typo in seconds, not after reading 110 waves."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from ava.io import file_sha256
from ava.surveys.curated import OpinionQA, WaveDetails, load_opinionqa, load_survey_details, load_xl_questions
from ava.surveys.discovery import Skipped, WaveFile, discover
from ava.surveys.errors import SurveyInputError
from ava.surveys.reference import ReferenceFile, load_reference
from ava.surveys.rules import demographic_rules


@dataclass
class BuildInputs:
    """Everything read before the waves: what to build from, and the warnings met on the way."""

    wave_files: list[WaveFile]
    skipped: list[Skipped]
    oqa: OpinionQA | None = None
    oqa_dir: Path | None = None
    xl_json: dict = field(default_factory=dict)
    details: dict[str, WaveDetails] = field(default_factory=dict)
    reference: list[ReferenceFile] | None = None
    curated_files: dict[str, Path] = field(default_factory=dict)  # shown name (relative to its folder's parent)
    warnings: list[str] = field(default_factory=list)


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.name


def find_waves(pew_dir: Path, waves: Collection[str] | None) -> tuple[list[WaveFile], list[Skipped]]:
    """The wave files to build; two different files claiming one wave, or a requested wave without a
    file, stop the build (which one is the wave is the user's call, not ours)."""
    if not pew_dir.is_dir():
        raise SurveyInputError(f"{pew_dir}: no such folder; pass --pew-dir the folder holding the Pew ATP .sav files")
    try:
        wave_files, skipped = discover(pew_dir)
    except OSError as exc:
        raise SurveyInputError(f"{exc.filename or pew_dir}: cannot list ({exc.strerror or exc})") from None
    kept = []
    for s in skipped:
        if s.duplicate_of is None:
            kept.append(s)
        elif file_sha256(s.path) == file_sha256(s.duplicate_of):
            kept.append(Skipped(s.path, f"identical copy of {_relative(s.duplicate_of, pew_dir)}"))
        else:
            raise SurveyInputError(f"{s.path}: a second, different file for the wave of {s.duplicate_of}; keep the "
                                   "one that is the wave and move the other out of --pew-dir")
    if waves is not None:
        wanted = {w.upper() if w.upper().startswith("W") else f"W{w}" for w in waves}
        missing = sorted(wanted - {w.wave.upper() for w in wave_files})
        if missing:
            raise SurveyInputError(f"{pew_dir}: no 'ATP W<n>.sav' file for --wave {', '.join(missing)} "
                                   f"({len(wave_files)} waves found)")
        wave_files = [w for w in wave_files if w.wave.upper() in wanted]
    if not wave_files:
        raise SurveyInputError(f"{pew_dir}: no Pew ATP wave files ('ATP W<n>.sav') found; point --pew-dir at the "
                               "unpacked download")
    return wave_files, kept


def _find_near(pew_dir: Path, name: str) -> Path | None:
    """``name`` beside or above the wave folder (shared/data: pew-atp/PEW_ATP_Cleaned, pew-atp/questions,
    opinionqa/)."""
    for base in (pew_dir, pew_dir.parent, pew_dir.parent.parent):
        if (base / name).is_dir():
            return base / name
    return None


def _load_opinionqa(pew_dir: Path, opinionqa_dir: Path | None, inputs: BuildInputs) -> None:
    oqa_dir = opinionqa_dir or _find_near(pew_dir, "opinionqa")
    if oqa_dir is None:
        raise SurveyInputError(f"{pew_dir}: OpinionQA's metadata not found (no opinionqa/ folder beside it or up to "
                               "two levels above); pass --opinionqa-dir DIR, or --sav-only to build OpinionQA-XL alone")
    inputs.oqa = load_opinionqa(oqa_dir)
    base = oqa_dir if (oqa_dir / "human_resp").is_dir() else oqa_dir.parent
    inputs.oqa_dir = base
    inputs.curated_files.update({_relative(p, base.parent): p for p in inputs.oqa.files})
    if not inputs.oqa.topics:
        inputs.warnings.append(f"{base / 'topic_mapping.json'}: not found; OpinionQA questions get no cg:/fg: "
                               "topic tags")
    ref_dir = base / "reference_counts"
    if ref_dir.is_dir():
        inputs.reference = load_reference(ref_dir)
        inputs.curated_files.update({_relative(p, base.parent): p for p, _, _ in inputs.reference})
    else:
        inputs.warnings.append(f"{ref_dir}: not found; the build is not checked against OpinionQA's released counts")
    ours = {a: tuple(g for aa, g in demographic_rules().group_keys() if aa == a)
            for a, _ in demographic_rules().group_keys()[1:]}
    differ = sorted(a for a in set(ours) | set(inputs.oqa.groups) if ours.get(a) != inputs.oqa.groups.get(a))
    if differ:
        inputs.warnings.append(f"OpinionQA's metadata.csv lists other groups than demographics.yaml for "
                               f"{', '.join(differ)}; the build uses demographics.yaml's")


def _load_questions(pew_dir: Path, questions_dir: Path | None, inputs: BuildInputs) -> None:
    qdir = questions_dir or _find_near(pew_dir, "questions")
    if qdir is None:
        raise SurveyInputError(f"{pew_dir}: the question texts (a questions/ folder with opinionqa-xl.json and "
                               "survey-details.json) not found beside it or up to two levels above; pass "
                               "--questions-dir DIR, or --sav-only")
    for name in ("opinionqa-xl.json", "survey-details.json"):
        if not (qdir / name).is_file():
            raise SurveyInputError(f"{qdir / name}: not found; pass --questions-dir the folder holding "
                                   "opinionqa-xl.json and survey-details.json, or --sav-only")
    inputs.xl_json = load_xl_questions(qdir / "opinionqa-xl.json")
    inputs.details = load_survey_details(qdir / "survey-details.json")
    inputs.curated_files.update({_relative(qdir / n, qdir.parent): qdir / n
                                 for n in ("opinionqa-xl.json", "survey-details.json")})


def check_output(out: Path) -> None:
    """The output folder can be created or written (:func:`ava.runs.check_writable`, the check every
    command shares) and holds nothing in the way of the build's own files."""
    from ava.runs import NotWritable, Output, check_writable

    try:
        check_writable(Output(out, folder=True))
    except NotWritable as exc:
        raise SurveyInputError(str(exc)) from None
    from ava.surveys.store import SurveyBuild

    for names, is_right in ((SurveyBuild.OUTPUT_DIRS, Path.is_dir), (SurveyBuild.OUTPUT_FILES, Path.is_file)):
        for name in names:
            if (out / name).exists() and not is_right(out / name):
                raise SurveyInputError(f"{out / name}: in the way of the build's own output; move it away")


def _check_apart(out: Path, pew_dir: Path, opinionqa_dir: Path | None, questions_dir: Path | None) -> None:
    """``--out`` is none of the input folders, not inside one and holds none (:func:`ava.runs.check_apart`):
    a build inside ``--pew-dir`` would find its own files among the waves next time."""
    from ava.runs import RunRefused, check_apart

    try:
        for flag, folder in (("--pew-dir", pew_dir), ("--opinionqa-dir", opinionqa_dir),
                             ("--questions-dir", questions_dir)):
            if folder is not None:
                check_apart(out, [folder], "--out", flag)
    except RunRefused as exc:
        raise SurveyInputError(str(exc)) from None


def preflight(pew_dir: Path, out: Path, *, opinionqa_dir: Path | None, questions_dir: Path | None,
              waves: Collection[str] | None, sav_only: bool) -> BuildInputs:
    """Check and read every input, then the output folder; raises ``SurveyInputError`` on the first problem."""
    if sav_only and (opinionqa_dir or questions_dir):
        raise SurveyInputError("--sav-only builds from the .sav files alone: drop --opinionqa-dir / --questions-dir")
    _check_apart(out, pew_dir, opinionqa_dir, questions_dir)
    wave_files, skipped = find_waves(pew_dir, waves)
    inputs = BuildInputs(wave_files, skipped)
    if sav_only:
        inputs.warnings.append("--sav-only: no opinionqa benchmark; OpinionQA-XL texts from SPSS labels, dates from "
                               "folder names, no topics")
    else:
        _load_opinionqa(pew_dir, opinionqa_dir, inputs)
        _load_questions(pew_dir, questions_dir, inputs)
    check_output(out)
    return inputs
