"""Argo's documented example workflows, run by the local engine against the real embedded S3.

Each test checks the outcome Argo documents: which nodes Succeeded, Failed, were Skipped or Omitted,
how many attempts a retry made, and what outputs flowed between steps.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from workflows.engine.executor import Engine
from workflows.engine.spec.submit import from_file, prepare
from workflows.platform.s3 import s3_client
from workflows.settings import Settings

HERE = Path(__file__).parent
EXAMPLES = HERE / "workflows"


def run(engine: Engine, name: str, **params: str) -> dict[str, Any]:
    workflow = prepare(engine.library, from_file(EXAMPLES / f"{name}.yaml"), params)
    return engine.run(workflow)


def phases(workflow: dict[str, Any]) -> dict[str, str]:
    """Display name -> phase of every node (display names are unique in these examples)."""
    return {n["displayName"]: n["phase"] for n in workflow["status"]["nodes"].values()}


def node(workflow: dict[str, Any], display: str) -> dict[str, Any]:
    return next(n for n in workflow["status"]["nodes"].values() if n["displayName"] == display)


def test_dag_diamond_runs_in_dependency_order(engine: Engine) -> None:
    wf = run(engine, "dag-diamond")
    assert wf["status"]["phase"] == "Succeeded"
    assert {k: v for k, v in phases(wf).items() if len(k) == 1} == dict.fromkeys("ABCD", "Succeeded")
    a, b, c, d = (node(wf, x) for x in "ABCD")
    assert a["finishedAt"] <= b["startedAt"] and a["finishedAt"] <= c["startedAt"]
    assert max(b["finishedAt"], c["finishedAt"]) <= d["startedAt"]
    assert sorted(wf["status"]["nodes"][i]["displayName"] for i in a["children"]) == ["B", "C"]
    assert wf["status"]["progress"] == "4/4"


def test_steps_run_groups_in_sequence(engine: Engine) -> None:
    wf = run(engine, "steps")
    assert wf["status"]["phase"] == "Succeeded"
    groups = [node(wf, "[0]"), node(wf, "[1]")]
    assert [(g["type"], g["phase"]) for g in groups] == [("StepGroup", "Succeeded")] * 2
    assert sorted(wf["status"]["nodes"][c]["displayName"] for c in groups[1]["children"]) == ["hello2a", "hello2b"]
    assert node(wf, "hello1")["finishedAt"] <= min(node(wf, "hello2a")["startedAt"], node(wf, "hello2b")["startedAt"])
    assert node(wf, "hello2b")["outputs"]["result"] == "hello2b"


def test_coinflip_runs_exactly_one_branch(engine: Engine) -> None:
    wf = run(engine, "coinflip")
    assert wf["status"]["phase"] == "Succeeded"
    flip = node(wf, "flip-coin")["outputs"]["result"]
    assert flip in ("heads", "tails")
    other = "tails" if flip == "heads" else "heads"
    assert phases(wf)[flip] == "Succeeded"
    assert phases(wf)[other] == "Skipped"
    assert node(wf, other)["message"].startswith("when '")


def test_retry_backoff_succeeds_on_third_attempt(engine: Engine, tmp_path: Path) -> None:
    wf = run(engine, "retry-backoff", counter=str(tmp_path / "counter"))
    assert wf["status"]["phase"] == "Succeeded"
    retry = next(n for n in wf["status"]["nodes"].values() if n["type"] == "Retry")
    attempts = [wf["status"]["nodes"][c] for c in retry["children"]]
    assert [a["phase"] for a in attempts] == ["Failed", "Failed", "Succeeded"]
    assert attempts[2]["outputs"]["result"] == "attempt 2 retries=2"
    # backoff 200ms then 400ms: each retry starts no earlier than its delay after the previous attempt
    from workflows.engine.state.nodes import epoch

    gaps = [epoch(attempts[i + 1]["startedAt"]) - epoch(attempts[i]["finishedAt"]) for i in range(2)]
    assert gaps[0] >= 0.2 and gaps[1] >= 0.4
    log = engine.store.log_path(wf["metadata"]["name"], attempts[2]["id"]).read_text()
    assert ("forked from the warm launcher" in log) is engine.warm  # the first attempt started the launcher


def test_retry_limit_and_policy(engine: Engine) -> None:
    wf = run(engine, "retry-exhausted")
    assert wf["status"]["phase"] == "Failed"
    retries = {n["displayName"]: n for n in wf["status"]["nodes"].values() if n["type"] == "Retry"}
    assert len(retries["always-fails"]["children"]) == 3  # limit 2 -> 3 attempts
    assert retries["always-fails"]["message"] == "No more retries left"  # Argo's words once the limit is spent
    attempts = [wf["status"]["nodes"][c] for c in retries["always-fails"]["children"]]
    assert all(a["nodeFlag"] == {"retried": True} and a["message"] == "Error (exit code 3)" for a in attempts)
    assert len(retries["not-retried-on-failure"]["children"]) == 1  # OnError does not retry a Failed step


def test_retry_expression_stops_on_bad_input_and_retries_the_rest(engine: Engine, tmp_path: Path) -> None:
    wf = run(engine, "retry-conditional", counter=str(tmp_path / "counter"))
    retries = {n["displayName"]: n for n in wf["status"]["nodes"].values() if n["type"] == "Retry"}
    assert len(retries["bad-input"]["children"]) == 1 and retries["bad-input"]["phase"] == "Failed"
    attempts = [wf["status"]["nodes"][c] for c in retries["transient"]["children"]]
    assert [a["phase"] for a in attempts] == ["Failed", "Failed", "Succeeded"]
    assert attempts[-1]["outputs"]["result"] == "attempt 2"


def test_loops_items_param_sequence_and_fan_in(engine: Engine) -> None:
    wf = run(engine, "loops")
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")
    names = phases(wf)
    assert {"maps(0:image:debian,tag:9.1)", "maps(1:image:alpine,tag:3.6)", "maps(2:image:ubuntu,tag:17.10)"} <= set(
        names
    )
    assert node(wf, "maps(1:image:alpine,tag:3.6)")["outputs"]["result"] == "alpine:3.6"
    assert [node(wf, f"sleep-n-sec({i}:{i + 1})")["phase"] for i in range(3)] == ["Succeeded"] * 3
    assert node(wf, "sleep-n-sec")["type"] == "TaskGroup"
    assert sorted(node(wf, f"sequence({i}:{i + 5})")["outputs"]["result"] for i in range(3)) == ["5", "6", "7"]
    assert node(wf, "fan-in")["outputs"]["result"] == "12"  # 2 + 4 + 6


def test_exit_handler_sees_status_and_failures(engine: Engine) -> None:
    wf = run(engine, "exit-handler")
    assert wf["status"]["phase"] == "Failed"
    assert phases(wf)["cry"] == "Succeeded"
    assert phases(wf)["celebrate"] == "Skipped"
    assert node(wf, "notify")["outputs"]["result"] == f"{wf['metadata']['name']} Failed intentional-fail"
    assert node(wf, f"{wf['metadata']['name']}.onExit")["phase"] == "Succeeded"


def test_output_parameter_and_result(engine: Engine) -> None:
    wf = run(engine, "output-parameter")
    assert wf["status"]["phase"] == "Succeeded"
    params = node(wf, "generate-parameter")["outputs"]["parameters"]
    assert params == [{"name": "hello-param", "value": "hello world"}]
    assert node(wf, "consume-parameter")["outputs"]["result"] == "hello world"


def test_artifacts_pass_between_steps_through_s3(engine: Engine, s3_only: Settings) -> None:
    wf = run(engine, "artifact-passing")
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")
    assert node(wf, "consume-artifact")["outputs"]["result"] == "hello world"
    assert node(wf, "consume-raw")["outputs"]["result"] == "hello world"
    arts = {a["name"]: a for a in node(wf, "generate-artifact")["outputs"]["artifacts"]}
    client = s3_client(s3_only)
    raw = client.get_object(Bucket=s3_only.artifacts_bucket, Key=f"{wf['metadata']['name']}/raw.txt")
    assert raw["Body"].read() == b"hello world\n"
    packed = client.get_object(Bucket=arts["hello-art"]["s3"]["bucket"], Key=arts["hello-art"]["s3"]["key"])
    assert packed["Body"].read()[:2] == b"\x1f\x8b"  # gzip, as Argo's default archive


def test_continue_on_fail_in_steps(engine: Engine) -> None:
    wf = run(engine, "continue-on-fail")
    assert wf["status"]["phase"] == "Succeeded"
    assert {k: phases(wf)[k] for k in "ABCD"} == {"A": "Succeeded", "B": "Succeeded", "C": "Failed", "D": "Succeeded"}


def test_continue_on_fail_in_dag(engine: Engine) -> None:
    wf = run(engine, "dag-continue-on-fail")
    p = phases(wf)
    assert {k: p[k] for k in "ABCDEFG"} == {
        "A": "Succeeded",
        "B": "Failed",
        "C": "Succeeded",
        "D": "Succeeded",
        "E": "Failed",
        "F": "Succeeded",
        "G": "Omitted",
    }
    assert wf["status"]["phase"] == "Failed"  # G's branch inherits E's failure


def test_enhanced_depends(engine: Engine) -> None:
    wf = run(engine, "dag-enhanced-depends")
    p = phases(wf)
    assert p["C"] == "Failed"
    assert p["should-not-execute"] == "Omitted"
    assert p["should-execute-1"] == p["should-execute-2"] == p["should-execute-3"] == "Succeeded"
    assert wf["status"]["phase"] == "Succeeded"


def _max_overlap(nodes: list[dict[str, Any]]) -> int:
    from workflows.engine.state.nodes import epoch

    events = sorted([(epoch(n["startedAt"]), 1) for n in nodes] + [(epoch(n["finishedAt"]), -1) for n in nodes])
    best = current = 0
    for _, delta in events:
        current += delta
        best = max(best, current)
    return best


def test_parallelism_limits(engine: Engine) -> None:
    wf = run(engine, "parallelism")
    assert wf["status"]["phase"] == "Succeeded"
    pods = [n for n in wf["status"]["nodes"].values() if n["type"] == "Pod"]
    loop = [n for n in pods if n["displayName"].startswith("sleep(")]
    serial = [n for n in pods if n["displayName"] in ("one", "two", "three")]
    assert len(loop) == 4 and _max_overlap(loop) == 2
    assert len(serial) == 3 and _max_overlap(serial) == 1


def test_template_deadline_fails_only_that_step(engine: Engine) -> None:
    wf = run(engine, "deadlines")
    assert phases(wf)["too-slow"] == "Failed"
    assert "deadline" in node(wf, "too-slow")["message"]
    assert phases(wf)["quick"] == "Succeeded"
    assert wf["status"]["phase"] == "Failed"


def test_workflow_deadline_stops_the_run_and_runs_exit_handler(engine: Engine) -> None:
    wf = run(engine, "workflow-deadline")
    assert wf["status"]["phase"] == "Failed"
    assert wf["status"]["message"] == "Max duration limit exceeded"
    assert phases(wf)["sleepy"] == "Failed"
    onexit = node(wf, f"{wf['metadata']['name']}.onExit")
    assert onexit["outputs"]["result"] == "status=Failed"


def test_template_ref_resolves_in_the_referenced_template(engine: Engine) -> None:
    wf = run(engine, "template-ref")
    assert wf["status"]["phase"] == "Succeeded", wf["status"].get("message")
    assert node(wf, "upper")["outputs"]["result"] == "HELLO"


def test_status_reads_as_an_argo_workflow(engine: Engine) -> None:
    """The stored record parses with hera's Argo Workflow model, status included."""
    from hera.workflows.models import Workflow

    wf = run(engine, "dag-diamond")
    saved = engine.store.load(wf["metadata"]["name"])
    model = Workflow.model_validate(saved)
    assert model.status is not None and model.status.phase == "Succeeded"
    assert model.status.nodes is not None
    root = model.status.nodes[wf["metadata"]["name"]]
    assert root.type == "DAG" and root.template_name == "diamond"
    assert json.loads(json.dumps(saved))["status"]["nodes"][root.children[0]]["displayName"] == "A"  # type: ignore[index]


def test_a_mutex_serializes_concurrent_runs(engine: Engine) -> None:
    import threading

    results: list[dict[str, Any]] = []
    threads = [threading.Thread(target=lambda: results.append(run(engine, "synchronization-mutex"))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r["status"]["phase"] for r in results] == ["Succeeded", "Succeeded"]
    pods = [n for r in results for n in r["status"]["nodes"].values() if n["type"] == "Pod"]
    assert _max_overlap(pods) == 1  # never both inside the mutex


def test_a_semaphore_limits_a_template(engine: Engine) -> None:
    from workflows.engine.state.objects import LocalObjects

    engine.objects = LocalObjects(configmaps={"my-config": {"template": "2"}})
    wf = run(engine, "synchronization-semaphore")
    assert wf["status"]["phase"] == "Succeeded"
    pods = [n for n in wf["status"]["nodes"].values() if n["type"] == "Pod"]
    assert len(pods) == 4 and _max_overlap(pods) == 2


def test_memoize_reuses_outputs_for_the_same_key(engine: Engine) -> None:
    first = run(engine, "memoize")
    second = run(engine, "memoize")
    third = run(engine, "memoize", message="another-message")
    a, b, c = (node(w, w["metadata"]["name"]) for w in (first, second, third))
    assert a["memoizationStatus"]["hit"] is False and b["memoizationStatus"]["hit"] is True
    assert b["outputs"] == a["outputs"] and b["message"].startswith("cached")
    assert c["memoizationStatus"]["hit"] is False  # keyed by content: a new input is a new key
    assert c["outputs"]["parameters"] == [{"name": "hello", "value": "another-message"}]
