"""``make soak``: restarts and kill -9s of random services under prediction traffic, for a bounded time.

It starts a throwaway platform on free ports, trains both techniques on small data, then until
``CTCD_SOAK_SECONDS`` (default 180) have passed: picks a service (or a revision server, or everything), restarts
it gracefully or kills it -9, runs ``ctcd up`` and checks what a user relies on (every service healthy, git,
registry and serving in agreement, no run stuck, no lock held, S3 objects and commits unchanged).  It prints
each round and a summary: restarts, requests, answers by status code, checks passed.  Traffic goes only to
127.0.0.1.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from tests.conftest import ctcd, free_port_block, make_settings
from tests.e2e import test_recovery as checks
from tests.e2e.conftest import SMALL, run_template
from workflows.local import stack

SERVICES = ("s3", "mlflow", "bridge", "serving", "revisions", "everything")


def _break(settings: object, target: str, mode: str) -> None:
    if target == "revisions":
        checks._kill9(checks._revision_pids(settings))  # type: ignore[arg-type]
    elif target == "everything":
        pids = [int(p) for row in stack.status(settings) for p in row["pids"]]  # type: ignore[arg-type, attr-defined]
        checks._kill9(pids)
    elif mode == "restart":
        stack.down(settings, only=(target,))  # type: ignore[arg-type]
    else:
        checks._kill9([checks._leaders(settings)[target]])  # type: ignore[arg-type]


def main() -> int:
    """Run the soak; exit 1 on the first failed check."""
    seconds = float(os.environ.get("CTCD_SOAK_SECONDS", "180"))
    rng = random.Random(int(os.environ.get("CTCD_SOAK_SEED", "0")))
    with tempfile.TemporaryDirectory(prefix="ctcd-soak-") as tmp:
        settings = make_settings(Path(tmp), free_port_block())
        stack.up(settings)
        try:
            for technique, rows in SMALL.items():
                ctcd(settings, "data", "seed", technique, "--rows", str(rows))
            run_template(settings, "train-all")
            stack.wait_serving(settings, 120)
            checks._wait(lambda: checks._agree(settings), 60, "agreement before the soak")
            return _soak(settings, seconds, rng)
        finally:
            stack.down(settings)


def _soak(settings: object, seconds: float, rng: random.Random) -> int:
    restarts, codes, passed, recovery = Counter[str](), Counter[int](), 0, []
    end = time.monotonic() + seconds
    with checks.Traffic(settings) as traffic:  # type: ignore[arg-type]
        while time.monotonic() < end:
            target, mode = rng.choice(SERVICES), rng.choice(("restart", "kill -9"))
            mode = "kill -9" if target in ("revisions", "everything") else mode
            before = checks._snapshot(settings)  # type: ignore[arg-type]
            _break(settings, target, mode)
            started = time.monotonic()
            try:
                checks._recover_and_check(settings, f"{mode} {target}", before)  # type: ignore[arg-type]
            except AssertionError as exc:
                print(f"FAILED after {mode} {target}: {exc}")
                return 1
            recovery.append(time.monotonic() - started)
            restarts[f"{mode} {target}"] += 1
            passed += 1
            print(f"{mode:8} {target:10} recovered in {recovery[-1]:5.1f}s; traffic so far {dict(traffic.codes)}")
        codes.update(traffic.codes)
    requests = sum(codes.values())
    print("\nsoak summary")
    print(f"  rounds: {passed} ({', '.join(f'{k}: {v}' for k, v in sorted(restarts.items()))})")
    print(f"  requests: {requests}; answers by status code: {dict(sorted(codes.items()))} (0 = no answer)")
    print(f"  recovery: median {sorted(recovery)[len(recovery) // 2]:.1f}s, worst {max(recovery):.1f}s")
    print(f"  checks passed after every round: {passed} x (health, agreement, runs, locks, S3 objects, commits)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
