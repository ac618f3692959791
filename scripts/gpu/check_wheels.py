"""Check a folder of wheels against the GPU machine: every requirement of every wheel (for
Python 3.12 on Linux, with the extras other wheels ask for) must be on the machine
(scripts/gpu/device-packages.txt) or among the wheels, and no package may come twice (two
versions stop pip's whole install) or shadow the machine's own copy.

    python scripts/gpu/check_wheels.py .whl        # prints the list and sizes; exit 1 if incomplete
"""

from __future__ import annotations

import re
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement

ENV = {**default_environment(), "python_version": "3.12", "python_full_version": "3.12.3",
       "sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64"}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def device_packages() -> set[str]:
    lines = Path(__file__).with_name("device-packages.txt").read_text().splitlines()
    return {canonical(line.strip()) for line in lines if line.strip() and not line.startswith("#")}


def read_wheels(folder: Path) -> tuple[dict[str, Path], dict[str, list[Requirement]], list[str]]:
    carried: dict[str, Path] = {}
    requirements: dict[str, list[Requirement]] = {}
    problems: list[str] = []
    for wheel in sorted(folder.glob("*.whl")):
        with zipfile.ZipFile(wheel) as zf:
            meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
            message = Parser().parsestr(zf.read(meta).decode("utf-8"))
        name = canonical(message["Name"])
        if name in carried:
            problems.append(f"{name} twice: {carried[name].name} and {wheel.name}")
        carried[name] = wheel
        requirements[name] = [Requirement(r) for r in message.get_all("Requires-Dist") or []]
    return carried, requirements, problems


def main(folder: Path) -> int:
    device = device_packages()
    carried, requirements, problems = read_wheels(folder)
    problems += [f"{name} is already on the device: carrying it shadows the device's copy"
                 for name in carried if name in device]
    todo = [(name, "") for name in carried]  # (package, extra asked for)
    seen = set()
    while todo:
        name, extra = todo.pop()
        if (name, extra) in seen or name not in requirements:
            continue
        seen.add((name, extra))
        for req in requirements[name]:
            if req.marker is not None and not req.marker.evaluate({**ENV, "extra": extra}):
                continue
            if extra and (req.marker is None or "extra" not in str(req.marker)):
                continue  # the unconditional ones were checked with extra=""
            dep = canonical(req.name)
            if dep not in device and dep not in carried:
                problems.append(f"{name}{f'[{extra}]' if extra else ''} needs {req}: neither on the device nor carried")
            todo += [(dep, e) for e in req.extras]
    total = 0
    for _, wheel in sorted(carried.items()):
        total += wheel.stat().st_size
        print(f"{wheel.name:<84} {wheel.stat().st_size / 2**20:6.2f} MiB")
    print(f"{len(carried)} wheels, {total / 2**20:.1f} MiB")
    for problem in problems:
        print(f"PROBLEM: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else ".whl")))
