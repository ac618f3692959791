"""Pick a wave's survey weight by Pew's naming and say why, or refuse where a person could not decide.

A Pew ATP file carries the wave's weight beside weights for other uses: longitudinal weights for the
respondents of several waves, subgroup and oversample weights, weights for part of the field period,
one form, one mode or experimental arm, or other calibration targets. The wrong one silently changes
every distribution of the wave, so the choice is made by the rules of ``weights.yaml``, which read the
names and labels as a person reading the codebook would; where they find no single answer the wave is
refused with its candidates (``--weight W<n>=COLUMN`` settles it) rather than guessed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import pyreadstat

from ava.surveys.discovery import WaveFile
from ava.surveys.errors import SurveyInputError
from ava.surveys.rules import WeightRules, normalise_label, weight_rules

_IS_WEIGHT = re.compile(r"(?:^|_)[A-Z]*WEIGHT(?:_|$)")  # WEIGHT_W26, DIARYWEIGHT_APP; not WEIGHTLOSS_W50
_WAVES = re.compile(r"(?:W\d+(?:\.\d+)?)+")
FULL_SAMPLE_KINDS = ("final", "general-population", "plain")  # by name; "wave" (WEIGHT_W<n>) comes first
NOT_THIS_SAMPLE = ("other-waves", "do-not-use")


@dataclass(frozen=True)
class WeightColumn:
    """One weight column of a wave file, read by the rules."""

    name: str
    label: str
    waves: tuple[str, ...]  # the waves its name names
    qualifiers: str  # its name less WEIGHT and the waves: "" (WEIGHT_W26, WEIGHT), "JUN24", "DIARY_APP"
    kind: str  # wave | final | general-population | plain | other-waves | do-not-use | <weights.yaml kind> | unknown
    partial: bool  # a weight for part of the sample: never the wave's weight
    why: str  # what it is, said when it is not the one chosen
    full_label: bool  # its label says it is the full-sample weight


@dataclass(frozen=True)
class WeightChoice:
    column: str | None
    rule: str  # named | wave | final | general-population | plain | label | only | none | refused
    reason: str
    others: dict[str, str] = field(default_factory=dict)  # every other weight column -> why it is not used
    labels: dict[str, str] = field(default_factory=dict)  # every weight column -> its variable label

    @property
    def candidates(self) -> tuple[str, ...]:
        return tuple(self.labels)

    def report(self) -> dict:
        """The manifest's ``waves.<wave>.weight``."""
        return {"column": self.column, "rule": self.rule, "reason": self.reason, "others": dict(self.others),
                "labels": dict(self.labels)}


def split_name(name: str) -> tuple[tuple[str, ...], str]:
    """(waves, qualifiers) of a weight column name: WEIGHT_W53_W54 -> (W53, W54), "";
    WEIGHT_JUN24_W91 -> (W91,), "JUN24"; DIARYWEIGHT_APP -> (), "DIARY_APP"."""
    waves: list[str] = []
    quals: list[str] = []
    for token in (t for t in name.upper().split("_") if t):
        if _WAVES.fullmatch(token):
            waves += re.findall(r"W\d+(?:\.\d+)?", token)
        elif token.endswith("WEIGHT"):
            quals += [token[: -len("WEIGHT")]] if token != "WEIGHT" else []
        else:
            quals.append(token)
    return tuple(waves), "_".join(quals)


def classify(name: str, label: str, wave: str, rules: WeightRules) -> WeightColumn:
    """What ``name`` is, for ``wave``: its kind and, unless it names the full sample, why not to use it."""
    waves, quals = split_name(name)
    norm = normalise_label(label or "")
    full_label = any(p.search(norm) for p in rules.full_sample_label)
    partial, why = False, ""
    if waves and waves != (wave.upper(),):
        kind = "other-waves"
        why = (f"longitudinal weight ({', '.join(waves)}): for the respondents of several waves" if len(waves) > 1
               else f"weight of another wave ({waves[0]})")
    elif any(p.search(norm) for p in rules.do_not_use):
        kind, why = "do-not-use", "its label says not to use it"
    elif not quals:
        kind = "wave" if waves else "plain"
    else:
        kind = next((rule for rule, p in rules.full_sample if p.fullmatch(quals)), "")
        if not kind:
            found = rules.kind_of(quals)
            kind, partial = (found.name, found.partial) if found else ("unknown", False)
            why = f"{found.why}: {quals}" if found else f"qualifier {quals} not known to the rules"
    if any(p.search(norm) for p in rules.some_questions_label):
        why += ("; " if why else "") + "its label limits it to some questions"
    return WeightColumn(name, str(label or ""), waves, quals, kind, partial, why, full_label)


def weight_columns(columns: list[str]) -> list[str]:
    return [c for c in columns if _IS_WEIGHT.search(c.upper())]


def choose_weight(columns: list[str], wave: str, labels: Mapping[str, str | None] | None = None,
                  named: str | None = None, rules: WeightRules | None = None) -> WeightChoice:
    """The weight of ``wave`` by the first rule that decides (order and reasons: ``weights.yaml``)."""
    rules = rules or weight_rules()
    labels = labels or {}
    cols = [classify(c, labels.get(c) or "", wave, rules) for c in weight_columns(columns)]
    if named is not None:
        if named not in columns:
            return _result(cols, None, "refused", f"--weight {wave}={named}: the file has no column {named}")
        return _result(cols, named, "named", f"{named}: named with --weight {wave}={named}")
    usable = [c for c in cols if c.kind not in NOT_THIS_SAMPLE]
    exact = [c for c in usable if c.kind == "wave"]
    if exact:
        return _result(cols, exact[0].name, "wave", f"{exact[0].name}: Pew's weight for the wave's full sample")
    by_name = [c for c in usable if c.kind in FULL_SAMPLE_KINDS]
    if len(by_name) > 1:
        return _result(cols, None, "refused", f"several weights named as the full sample's: {_names(by_name)}")
    if by_name:
        c = by_name[0]
        what = {"final": "the wave's final weight", "general-population": "the general-population (full-panel) "
                "weight beside weights for parts of the sample", "plain": "the file's weight"}[c.kind]
        return _result(cols, c.name, c.kind, f"{c.name}: {what} (no WEIGHT_{wave})")
    by_label = [c for c in usable if c.full_label and not c.partial]  # a name for part of the sample wins
    if len(by_label) > 1:
        return _result(cols, None, "refused", f"several weights labelled as the full sample's: {_names(by_label)}")
    if by_label:
        c = by_label[0]
        return _result(cols, c.name, "label", f"{c.name}: its label names it the full-sample weight "
                                              f"(\"{c.label}\"; no WEIGHT_{wave})")
    if len(usable) == 1 and not usable[0].partial:
        c = usable[0]
        return _result(cols, c.name, "only", f"{c.name}: the only weight of this wave (no WEIGHT_{wave}); {c.why}")
    if len(usable) == 1:
        return _result(cols, None, "refused", f"its only weight is a {usable[0].why}: {usable[0].name}")
    if usable:
        return _result(cols, None, "refused", f"no full-sample weight among {_names(usable, why=True)}")
    why = f"no weight for this wave's sample: {_names(cols, why=True)}" if cols else "no weight column"
    return _result(cols, None, "none", why)


def _names(cols: list[WeightColumn], why: bool = False) -> str:
    return ", ".join(f"{c.name} ({c.why or c.kind})" if why else c.name for c in cols)


def _result(cols: list[WeightColumn], column: str | None, rule: str, reason: str) -> WeightChoice:
    others = {c.name: c.why or f"a full-sample weight by name too ({c.kind})"
              for c in cols if c.name != column}
    return WeightChoice(column, rule, reason, others, {c.name: c.label for c in cols})


def weight_error(path: str, wave: str, report: Mapping) -> str:
    """The build's one line for a wave left without a weight: the file, why, what to do."""
    columns = ", ".join(report.get("labels", {}))
    if report["rule"] == "refused":
        return (f"{path}: {wave}: the weight rules cannot choose its survey weight: {report['reason']}; name it "
                f"with --weight {wave}=COLUMN (one of {columns}), or pass --allow-unweighted to build the wave "
                "unweighted")
    named = f"name one with --weight {wave}=COLUMN ({columns}), " if columns else ""
    return (f"{path}: {wave} has no survey weight the rules can choose ({report['reason']}); {named}declare the "
            "wave in ava/data/surveys/weights.yaml or pass --allow-unweighted")


def parse_named(options: list[str] | Mapping[str, str] | None) -> dict[str, str]:
    """``--weight W26=WEIGHT_W26`` options (or a mapping) as {wave: column}; waves as ``W<n>``."""
    pairs = options.items() if isinstance(options, Mapping) else [_split_option(o) for o in options or []]
    named: dict[str, str] = {}
    for wave, column in pairs:
        key = wave.strip().upper() if wave.strip().upper().startswith("W") else f"W{wave.strip()}"
        if not re.fullmatch(r"W\d+(?:\.\d+)?", key) or not column.strip():
            raise SurveyInputError(f"--weight {wave}={column}: not WAVE=COLUMN; e.g. --weight W26=WEIGHT_W26")
        if named.get(key, column.strip()) != column.strip():
            raise SurveyInputError(f"--weight {key}: named twice ({named[key]}, {column.strip()}); keep one")
        named[key] = column.strip()
    return dict(sorted(named.items(), key=lambda kv: float(kv[0][1:])))


def _split_option(option: str) -> tuple[str, str]:
    if "=" not in option:
        raise SurveyInputError(f"--weight {option}: not WAVE=COLUMN; e.g. --weight W26=WEIGHT_W26")
    wave, column = option.split("=", 1)
    return wave, column


def check_named(named: Mapping[str, str], wave_files: list[WaveFile]) -> None:
    """Every ``--weight`` names a wave being built and a numeric column of its file (read before any wave
    is processed, from the files' metadata alone)."""
    files = {wf.wave.upper(): wf for wf in wave_files}
    for wave, column in named.items():
        wf = files.get(wave)
        if wf is None:
            raise SurveyInputError(f"--weight {wave}={column}: {wave} is not among the waves being built "
                                   f"({len(files)}); check the wave, or its --wave")
        try:
            _, meta = pyreadstat.read_sav(str(wf.path), metadataonly=True)
        except Exception as exc:  # noqa: BLE001 - the build reports an unreadable wave itself, naming the file
            raise SurveyInputError(f"{wf.path}: cannot read as an SPSS .sav file ({type(exc).__name__}) to check "
                                   f"--weight {wave}={column}; re-download the wave or remove it") from None
        if column not in meta.column_names:
            have = weight_columns(list(meta.column_names))
            raise SurveyInputError(f"{wf.path}: --weight {wave}={column}: no such column; its weight columns: "
                                   f"{', '.join(have) or 'none'}")
        if meta.readstat_variable_types.get(column) == "string":
            raise SurveyInputError(f"{wf.path}: --weight {wave}={column}: a text column, not a weight")
