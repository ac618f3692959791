"""The table of docs/evaluation.md "Small models, every way of reading them": one row per
``ava eval --benchmark opinionqa`` run directory, read from its results.json (nothing recomputed).

    python scripts/opinion_methods_table.py runs/t24/smollm2-chat-o1 runs/t24/smollm2-chat-o4 ...

Run names are the folder names; ``scripts/opinion_methods_table.sh`` makes the runs. Prints a
Markdown table (the representativeness columns: 1 - Wasserstein over the ordinal scale, as the
published protocol, and 1 - total variation; Meister et al.'s six-group mean TV, with the
refusal option, beside the uniform guess's on the same questions), then the letter prior.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _row(folder: Path) -> dict[str, Any]:
    data = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    task = data["tasks"]["opinionqa"]
    head, details, counts = task["headline"], task["details"], task["counts"]
    meister = (details.get("tv") or {}).get("meister_groups") or {}
    prior = (details.get("letter_prior") or {}).get("by_options", {}).get("4", {}).get("prior")
    expression = details.get("expression") or {}
    calibration = details.get("calibration") or {}
    agreement = details.get("text_agreement") or {}
    return {
        "run": folder.name, "units": task["units"], "asked": expression.get("questions_asked", task["units"]),
        "unparsable": expression.get("unparsable", counts.get("unparsable", 0)),
        "wd": head.get("representativeness"), "tv": head.get("representativeness_tv"),
        "uniform_wd": head.get("uniform_representativeness"), "uniform_tv": head.get("uniform_representativeness_tv"),
        "meister": meister.get("model_mean_tv_with_refusal"),
        "meister_uniform": meister.get("uniform_mean_tv_with_refusal"),
        "letter_mass": head.get("letter_mass"), "refusal": head.get("refusal_model"),
        "entropy": head.get("entropy_model"), "entropy_humans": head.get("entropy_humans"),
        "position_bias": (details.get("letter_prior") or {}).get("position_bias"), "prior4": prior,
        "temperature": calibration.get("temperature"), "agreement": agreement.get("agreement"),
        "humans": head.get("humans_average"), "wall_s": data["run"].get("wall_s"),
        "scoring_s": data["run"].get("scoring_s"),
    }


def _f(value: Any, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def main(folders: list[str]) -> None:
    rows = [_row(Path(f)) for f in folders if (Path(f) / "results.json").is_file()]
    print("| run | questions scored / asked | repr. (1−WD) | repr. (1−TV) | uniform 1−WD / 1−TV | Meister TV "
          "(uniform) | letter mass | refusal | entropy (humans) | position bias | 4-option prior A..D | "
          "first token = text | T | wall (scoring) |")
    print("|" + "---|" * 14)
    for r in rows:
        prior = "–" if not r["prior4"] else " ".join(f"{p:.2f}" for p in r["prior4"])
        wall = "–" if r["wall_s"] is None else f"{r['wall_s'] / 60:.1f} min"
        if r["scoring_s"] is not None:
            wall += f" ({r['scoring_s'] / 60:.1f})"
        print(f"| {r['run']} | {r['units']} / {r['asked']} | {_f(r['wd'])} | {_f(r['tv'])} | "
              f"{_f(r['uniform_wd'])} / {_f(r['uniform_tv'])} | {_f(r['meister'])} ({_f(r['meister_uniform'])}) | "
              f"{_f(r['letter_mass'])} | {_f(r['refusal'])} | {_f(r['entropy'])} ({_f(r['entropy_humans'])}) | "
              f"{_f(r['position_bias'])} | {prior} | {_f(r['agreement'], 2)} | {_f(r['temperature'], 2)} | {wall} |")


if __name__ == "__main__":
    main(sys.argv[1:])
