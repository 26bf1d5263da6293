"""Benchmark: the ctcd predictor (and the local gateway in front of it) against ``mlflow models serve`` and MLServer.

Every peer serves the very same model file (an intent classifier trained here on generated data), one worker
each, on 127.0.0.1, all started at once and measured in interleaved rounds (each round every peer in turn, the
order rotated), by the same load generator (``tests/bench/loadgen.py``):

- throughput at a fixed concurrency (closed loop, bounded time and request count; median of the rounds, their
  spread, and the predictor's ratio to the best peer round by round);
- p50/p99 latency at a fixed request rate (open loop, timed from each request's scheduled start; the
  rounds' latencies pooled);

for single-row and 32-row requests.  Servers run on one core and the generator on the other when the machine
has two or more.  MLServer cannot share a venv with KServe, so it runs from ``.venv-mlserver`` (built from
``tests/bench/peers/mlserver.lock``).  Prints a table with ratios against the better peer, writes
``bench-results/serving.json`` and compares with the previous file when there is one.  Then the compute limit
and each server's share of it, and a py-spy profile of the predictor under load (``serving_limit``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import psutil

from tests.bench import loadgen, serving_limit

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench-results" / "serving.json"
MLSERVER = ROOT / ".venv-mlserver" / "bin" / "mlserver"
NAME = "intent-classifier"
TRAIN_ROWS = 3000
CONCURRENCY = 8
SECONDS = 2.0
LATENCY_SECONDS = 3.0
ROUNDS = 4
GOAL = 1.5  # the predictor's throughput against the best peer, for 1 and 32 rows
MAX_REQUESTS = 20_000
RATES = {1: 100.0, 32: 20.0}  # requests per second for the latency runs
CORES = sorted(os.sched_getaffinity(0))
SERVER_CORES = {CORES[0]}
CLIENT_CORES = set(CORES[1:]) or SERVER_CORES


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def train_model(folder: Path) -> tuple[Path, str, list[str]]:
    """Fit the intent classifier and save it as an MLflow model; return its folder, sha256 and sample texts."""
    import mlflow

    from models.contract import get
    from workflows.steps.mlflow_logging import signature

    technique = get(NAME)
    frame = technique.generate(TRAIN_ROWS, seed=0)
    model = technique.fit(frame, {}, seed=0).model
    model_dir = folder / "model"
    mlflow.sklearn.save_model(model, model_dir, serialization_format="cloudpickle", signature=signature(technique))
    sha = hashlib.sha256((model_dir / "model.pkl").read_bytes()).hexdigest()
    return model_dir, sha, [str(t) for t in frame["text"].head(64)]


def _pin(cores: set[int]) -> Callable[[], None]:
    return lambda: os.sched_setaffinity(0, cores)


@contextmanager
def server(command: list[str], ready_url: str, log: Path, env: dict[str, str] | None = None) -> Iterator[None]:
    """Start a server pinned to the server core; wait until ``ready_url`` answers 200; stop it afterwards."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, preexec_fn=_pin(SERVER_CORES), cwd=ROOT
        )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{command[0]} exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(ready_url, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError(f"{ready_url} not ready in 120 s: {log.read_text()[-2000:]}")
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def payloads(texts: list[str], rows: int) -> dict[str, Any]:
    """The same rows in each peer's request format."""
    batch = texts[:rows]
    return {
        "v1": {"instances": batch},
        "mlflow": {"dataframe_split": {"columns": ["text"], "data": [[t] for t in batch]}},
        "v2": {
            "parameters": {"content_type": "pd"},
            "inputs": [
                {
                    "name": "text",
                    "shape": [len(batch)],
                    "datatype": "BYTES",
                    "data": batch,
                    "parameters": {"content_type": "str"},
                }
            ],
        },
    }


def interleaved(specs: dict[tuple[str, str], loadgen.Target]) -> dict[str, dict[str, dict[str, Any]]]:
    """ROUNDS of every (peer, rows) in turn, the order rotated each round, so a drift of the machine falls on all.

    Each round measures throughput at CONCURRENCY, then latency at RATES[rows]; the rounds' rates are kept (for
    ratios round by round) and their latencies pooled.
    """

    async def run() -> dict[tuple[str, str], dict[str, Any]]:
        for spec in specs.values():
            await loadgen.check(spec)
            await loadgen.closed_loop(spec, CONCURRENCY, 1.0, 2000)  # warm-up
        samples: dict[tuple[str, str], dict[str, Any]] = {k: {"rates": [], "lat": [], "errors": 0} for k in specs}
        keys = list(specs)
        for round_ in range(ROUNDS):
            shift = round_ * len(keys) // ROUNDS
            for key in keys[shift:] + keys[:shift]:
                tput = await loadgen.closed_loop(specs[key], CONCURRENCY, SECONDS, MAX_REQUESTS)
                lat = await loadgen.open_loop(specs[key], RATES[int(key[1])], LATENCY_SECONDS)
                samples[key]["rates"].append(tput.done / tput.seconds)
                samples[key]["lat"] += lat.latencies
                samples[key]["errors"] += tput.errors + lat.errors
        return samples

    figures: dict[str, dict[str, dict[str, Any]]] = {}
    for (name, rows), sample in asyncio.run(run()).items():
        rates, pooled = sample["rates"], loadgen.Result(len(sample["lat"]), 0, 0.0, sample["lat"])
        figures.setdefault(name, {})[rows] = {
            "throughput_rps": round(statistics.median(rates), 1),
            "rows_per_s": round(statistics.median(rates) * int(rows), 1),
            "rates": [round(r, 1) for r in rates],
            "throughput_spread": round((max(rates) - min(rates)) / statistics.median(rates), 3),
            "p50_ms": pooled.percentile(0.50),
            "p99_ms": pooled.percentile(0.99),
            "rate_rps": RATES[int(rows)],
            "errors": sample["errors"],
        }
    return figures


def _task_graph() -> dict[str, Any]:
    """The graph ``ctcd route`` writes for a channel and a split (Switch + Splitter), all to the one model here."""
    from workflows.delivery import routing

    plan = routing.Routing("intents", "staging", {NAME: 100}, {"chat": NAME})
    return routing.graph("intents", plan, [NAME])


def _gateway_command(port: int, target_port: int, log_folder: Path | None = None) -> list[str]:
    """The gateway in front of the predictor; with ``log_folder``, its prediction log writes there (the same writer
    as against S3: records are queued on the request and flushed by a thread)."""
    graphs = {"ctcd-staging/intents": _task_graph()}
    writer = (
        f"import pathlib; from serving.predlog import LogWriter; d = pathlib.Path({str(log_folder)!r}); "
        "w = LogWriter(lambda k, b: (d / k.replace('/', '_')).write_bytes(b)); "
        if log_folder
        else "w = None; "
    )
    code = (
        "import sys, types, uvicorn; from serving.local.gateway import app; "
        + writer
        + f"s = types.SimpleNamespace(routes={{'ctcd-staging/{NAME}': [(100, {target_port}, 'bench')]}}, "
        f"graphs={graphs!r}, commit=''); "
        f"uvicorn.run(app(s, seed=0, log=w), host='127.0.0.1', port={port}, log_level='warning')"
    )
    return [sys.executable, "-c", code]


def _mlserver_folder(folder: Path, model_dir: Path, port: int, batching: bool) -> Path:
    root = folder / ("mlserver-batching" if batching else "mlserver")
    (root / NAME).mkdir(parents=True)
    settings = {"http_port": port, "grpc_port": _free_port(), "host": "127.0.0.1", "parallel_workers": 0}
    settings |= {"metrics_port": _free_port(), "metrics_endpoint": None, "debug": False}
    (root / "settings.json").write_text(json.dumps(settings))
    model: dict[str, Any] = {"name": NAME, "implementation": "mlserver_sklearn.SKLearnModel"}
    model["parameters"] = {"uri": str(model_dir / "model.pkl")}
    if batching:  # MLServer's adaptive batching: up to 32 requests, waiting at most 2 ms for more
        model |= {"max_batch_size": 32, "max_batch_time": 0.002}
    (root / NAME / "model-settings.json").write_text(json.dumps(model))
    return root


def ensure_mlserver() -> bool:
    """Build or update ``.venv-mlserver`` from its lock (quick when up to date); False when it cannot be built."""
    uv = shutil.which("uv") or str(ROOT / ".venv" / "bin" / "uv")
    venv = MLSERVER.parent.parent
    try:
        if not (venv / "bin" / "python").exists():
            subprocess.run([uv, "venv", "-q", "--python", "3.11", str(venv)], check=True, cwd=ROOT)
        lock = ROOT / "tests" / "bench" / "peers" / "mlserver.lock"
        subprocess.run(
            [uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python"), "-r", str(lock)], check=True
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"MLServer peer skipped: could not build {venv} ({exc})")
        return False
    return True


def peers(
    stack: ExitStack, folder: Path, model_dir: Path, sha: str
) -> list[tuple[str, int, str, Callable[[int], str]]]:
    """Start every peer (all run at once, idle but for the one measured): (name, port, format, path) of each."""
    found = []
    port = _free_port()
    ctcd = [sys.executable, "-m", "serving", "--model_name", NAME, "--model_dir", str(model_dir), "--sha256", sha]
    stack.enter_context(
        server([*ctcd, "--http_port", str(port)], f"http://127.0.0.1:{port}/v1/models/{NAME}", folder / "ctcd.log")
    )
    found.append(("ctcd predictor", port, "v1", lambda _: f"/v1/models/{NAME}:predict"))
    gateway = _free_port()
    stack.enter_context(
        server(_gateway_command(gateway, port), f"http://127.0.0.1:{gateway}/healthz", folder / "gateway.log")
    )
    found.append(("ctcd via gateway", gateway, "v1", lambda _: f"/v1/models/{NAME}:predict"))
    found.append(("ctcd via task graph", gateway, "v1", lambda _: "/v1/models/intents:predict"))  # Switch + Splitter
    logged, records = _free_port(), folder / "prediction-log"
    records.mkdir(exist_ok=True)
    stack.enter_context(
        server(_gateway_command(logged, port, records), f"http://127.0.0.1:{logged}/healthz", folder / "gl.log")
    )
    found.append(("ctcd via gateway, logged", logged, "v1", lambda _: f"/v1/models/{NAME}:predict"))
    if os.environ.get("CTCD_BENCH_PEERS") == "ctcd":  # just the predictor and the gateway in front of it
        return found
    port = _free_port()
    mlflow_cmd = [str(ROOT / ".venv" / "bin" / "mlflow"), "models", "serve", "-m", str(model_dir), "--env-manager"]
    mlflow_cmd += ["local", "-h", "127.0.0.1", "-p", str(port), "--workers", "1"]
    env = {**os.environ, "PATH": f"{ROOT / '.venv' / 'bin'}:{os.environ.get('PATH', '')}"}  # it execs uvicorn
    stack.enter_context(server(mlflow_cmd, f"http://127.0.0.1:{port}/ping", folder / "mlflow.log", env))
    found.append(("mlflow models serve", port, "mlflow", lambda _: "/invocations"))
    if not ensure_mlserver():
        return found
    for batching in (False, True):
        port = _free_port()
        root = _mlserver_folder(folder, model_dir, port, batching)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        ready = f"http://127.0.0.1:{port}/v2/health/ready"
        stack.enter_context(server([str(MLSERVER), "start", str(root)], ready, folder / f"{root.name}.log", env))
        found.append((f"mlserver{' +batching' if batching else ''}", port, "v2", lambda _: f"/v2/models/{NAME}/infer"))
    return found


def table(figures: dict[str, dict[str, dict[str, Any]]], previous: dict[str, Any]) -> list[str]:
    """Rows of the printed table, with ratios against the better external peer and the previous run."""
    lines = [
        f"{'peer':<26}{'rows':>5}{'req/s':>9}{'spread':>8}{'rows/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'x best peer':>13}"
        f"{'vs last':>9}"
    ]
    for rows in ("1", "32"):
        external = [f[rows] for n, f in figures.items() if not n.startswith("ctcd") and rows in f]
        best = max((f["throughput_rps"] for f in external), default=float("nan"))
        for name, by_rows in figures.items():
            row = by_rows.get(rows)
            if row is None:
                continue
            last = previous.get("figures", {}).get(name, {}).get(rows, {}).get("throughput_rps")
            change = f"{row['throughput_rps'] / last:.2f}x" if last else "-"
            lines.append(
                f"{name:<26}{rows:>5}{row['throughput_rps']:>9}{row['throughput_spread']:>8.0%}{row['rows_per_s']:>10}"
                f"{row['p50_ms']:>9}"
                f"{row['p99_ms']:>9}{row['throughput_rps'] / best:>12.2f}x{change:>9}"
            )
    return lines


COMPARISONS = (  # (this peer, against that one, latency figure, what the line says, the aim)
    ("ctcd via gateway", "ctcd predictor", "p50_ms", "gateway", f"the direct predictor's throughput at concurrency "
     f"{CONCURRENCY}", " (aim: >= 0.80x, <= +1 ms)"),
    ("ctcd via gateway, logged", "ctcd via gateway", "p99_ms", "prediction log", "the gateway's throughput without it",
     " (aim: >= 0.95x, <= +0.5 ms)"),
    ("ctcd via task graph", "ctcd via gateway", "p50_ms", "task graph (Switch + Splitter)", "the gateway's throughput",
     ""),
)  # fmt: skip


def gateway_cost(figures: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    """Each gateway variant against what it builds on: throughput ratio and added latency, per request size."""
    lines = []
    for peer, base, latency, label, against, aim in COMPARISONS:
        mine, theirs = figures.get(peer, {}), figures.get(base, {})
        for rows in sorted(set(mine) & set(theirs), key=int):
            ratio = mine[rows]["throughput_rps"] / theirs[rows]["throughput_rps"]
            added = mine[rows][latency] - theirs[rows][latency]
            lines.append(f"{label}, {rows}-row: {ratio:.2f}x {against}, {latency[:3]} {added:+.2f} ms{aim}")
    return lines


def profile(folder: Path, model_dir: Path, sha: str, texts: list[str]) -> list[str]:
    """Where the predictor's time goes under single-row load (py-spy, 100 samples a second for 8 s)."""
    port, folded = _free_port(), folder / "predictor.folded"
    command = [sys.executable, "-m", "serving", "--model_name", NAME, "--model_dir", str(model_dir), "--sha256", sha]
    with server([*command, "--http_port", str(port)], f"http://127.0.0.1:{port}/v1/models/{NAME}", folder / "p.log"):
        spec = loadgen.target(port, f"/v1/models/{NAME}:predict", payloads(texts, 1)["v1"])
        pid = next(p.pid for p in psutil.process_iter() if f"--http_port {port}" in " ".join(p.cmdline()))
        asyncio.run(loadgen.closed_loop(spec, CONCURRENCY, 2.0, 10**6))  # warm-up: lazy imports, first requests
        spy = serving_limit.record(pid, 8, folded)
        asyncio.run(loadgen.closed_loop(spec, CONCURRENCY, 9.0, 10**6))
        spy.wait(30)
    return serving_limit.hot_spots(folded) if folded.exists() else ["py-spy wrote no profile (ptrace not allowed?)"]


def main() -> None:
    """Run every peer interleaved, print the table, the goals, the compute limit and the profile."""
    os.sched_setaffinity(0, CLIENT_CORES)
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(os.environ.get("CTCD_BENCH_DIR") or tmp)
        started = time.monotonic()
        model_dir, sha, texts = train_model(folder)
        print(f"model trained on {TRAIN_ROWS} rows in {time.monotonic() - started:.1f}s; serving {model_dir.name}")
        ceiling = serving_limit.limit(model_dir, texts, SERVER_CORES)
        with ExitStack() as stack:
            specs = {
                (name, str(rows)): loadgen.target(port, path(rows), payloads(texts, rows)[kind])
                for name, port, kind, path in peers(stack, folder, model_dir, sha)
                for rows in RATES
            }
            figures = interleaved(specs)
        hot = profile(folder, model_dir, sha, texts)
    print(
        f"\nserving {NAME}: throughput at concurrency {CONCURRENCY} ({ROUNDS} interleaved rounds of {SECONDS:.0f}s, "
        f"median; every round in the json), latency at {RATES[1]:.0f} req/s (1 row) and {RATES[32]:.0f} req/s "
        "(32 rows), pooled; one worker each"
    )
    print("\n".join(table(figures, previous)))
    print(
        "\n".join(gateway_cost(figures) + serving_limit.goals(figures, GOAL) + serving_limit.shares(figures, ceiling))
    )
    print("where the predictor's time goes (1-row load, py-spy samples):\n  " + "\n  ".join(hot))
    RESULTS.parent.mkdir(exist_ok=True)
    when = time.strftime("%Y-%m-%dT%H:%M:%S")
    RESULTS.write_text(json.dumps({"when": when, "figures": figures, "limit": ceiling, "profile": hot}, indent=2))


if __name__ == "__main__":
    main()
