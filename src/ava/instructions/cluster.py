"""Before a build runs on a Ray cluster: can every node that may run a shard see OUT and the inputs?

Shards write their parts and markers under OUT and read the ad files by path, so a cluster build
needs a file system all nodes share (NFS, a cluster mount). A build whose OUT is local to the driver
would otherwise half-run: shards "finish" on other nodes into folders the driver never sees. The
check: the driver writes a random token into OUT; one zero-CPU task pinned to every alive node with
CPUs reads it back and checks the input files' sizes. Any node that cannot refuses the build with
one message naming the node and what it could not see, before anything else is written.
"""

from __future__ import annotations

import secrets
import socket
from pathlib import Path
from typing import Any


class OutputNotShared(RuntimeError):
    """A node of the Ray cluster cannot see OUT (or an input) at the driver's path."""


def node_sees(probe: str, token: str, inputs: dict[str, int]) -> dict[str, Any]:
    """Runs on one node: what of the driver's token file and input files it cannot see."""
    missing = []
    path = Path(probe)
    if not path.exists() or path.read_text(encoding="utf-8") != token:
        missing.append(f"output folder {path.parent}")
    for name, size in inputs.items():
        p = Path(name)
        if not p.is_file() or p.stat().st_size != size:
            missing.append(f"input {name}")
    return {"host": socket.gethostname(), "missing": missing}


def check_shared(ray: Any, out: Path, inputs: list[Path], timeout_s: float = 300) -> int:
    """Raise :class:`OutputNotShared` unless every CPU node sees ``out`` and ``inputs``; returns the
    number of nodes checked. ``out`` is created for the probe and removed again if it stays empty."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    out = out.resolve()
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(16)
    probe = out / f".ava-shared-check-{token}"
    probe.write_text(token, encoding="utf-8")
    expect = {str(p.resolve()): p.stat().st_size for p in inputs}
    try:
        nodes = [n for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) > 0]
        task = ray.remote(num_cpus=0, max_retries=0)(node_sees)
        refs = [task.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False))
                .remote(str(probe), token, expect) for n in nodes]
        reports = ray.get(refs, timeout=timeout_s)
    finally:
        probe.unlink(missing_ok=True)
    bad = [(n, r) for n, r in zip(nodes, reports, strict=True) if r["missing"]]
    if bad:
        if created and not any(out.iterdir()):
            out.rmdir()
        where = "; ".join(f"node {n.get('NodeManagerAddress')} ({r['host']}) cannot see {', '.join(r['missing'])}"
                          for n, r in bad)
        raise OutputNotShared(
            f"--out {out} is not shared with every Ray node: {where}. Put --out and the inputs on a file "
            f"system all nodes mount at the same path (nothing was written)."
        )
    return len(nodes)
