"""Find the wave files in a directory laid out the way Pew downloads unpack.

Every ``.sav`` below the directory is either a wave to process or listed with why it is not:
macOS AppleDouble clutter (``__MACOSX/``, ``._*``) is ignored outright (it is not data), special
studies and diary instance files are recognised by name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_WAVE_FILE = re.compile(r"^ATP W(?P<num>\d+(?:\.\d+)?)(?P<rest>.*)\.sav$", re.IGNORECASE)
_WAVE_DIR = re.compile(r"^W(?P<num>\d+(?:\.\d+)?)_", re.IGNORECASE)


@dataclass(frozen=True)
class WaveFile:
    """One respondent-level survey file to build questions from."""

    wave: str  # "W26", "W14.5"
    path: Path
    kind: str  # "wave" | "diary-respondent"
    folder: str  # the download's folder name, e.g. "W26_Apr17"


@dataclass(frozen=True)
class Skipped:
    path: Path
    reason: str
    duplicate_of: Path | None = None  # a second file of a wave already taken from this one


def _is_clutter(path: Path) -> bool:
    return "__MACOSX" in path.parts or path.name.startswith("._")


def _folder_of(path: Path, root: Path) -> str:
    for part in path.relative_to(root).parts[:-1]:
        if _WAVE_DIR.match(part):
            return part
    return path.parent.name


def _sort_key(wf: WaveFile) -> tuple[float, str]:
    return (float(wf.wave[1:]), str(wf.path))


def discover(root: str | Path) -> tuple[list[WaveFile], list[Skipped]]:
    """All wave files under ``root`` (recursively), plus the ``.sav`` files skipped and why."""
    root = Path(root)
    waves: list[WaveFile] = []
    skipped: list[Skipped] = []
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.suffix.lower() not in {".sav", ".zsav"} or _is_clutter(path):
            continue
        m = _WAVE_FILE.match(path.name)
        if m is None:
            dm = next((_WAVE_DIR.match(p) for p in path.relative_to(root).parts[:-1] if _WAVE_DIR.match(p)), None)
            where = f" inside {dm.group(0).rstrip('_')} folder" if dm else ""
            skipped.append(Skipped(path, f"special study{where}: not an 'ATP W<n>.sav' wave file"))
            continue
        wave = f"W{m.group('num')}"
        rest = m.group("rest").lower()
        if "instance" in rest:
            skipped.append(Skipped(path, "diary study, instance-level file (one row per diary entry, not per "
                                         "respondent); its respondent-level file is used instead"))
            continue
        kind = "diary-respondent" if "respondent" in rest else "wave"
        waves.append(WaveFile(wave=wave, path=path, kind=kind, folder=_folder_of(path, root)))
    waves.sort(key=_sort_key)
    seen: dict[str, WaveFile] = {}
    unique: list[WaveFile] = []
    for wf in waves:
        if wf.wave in seen:
            skipped.append(Skipped(wf.path, f"duplicate of {wf.wave} already taken from {seen[wf.wave].path}",
                                   seen[wf.wave].path))
            continue
        seen[wf.wave] = wf
        unique.append(wf)
    return unique, skipped
