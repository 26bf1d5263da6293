"""Argo features beyond DAGs and steps, each in an example written the way Argo's docs show it, run by the local
engine against the real embedded S3, checked against Argo's documented outcome (phases, node types, outputs).
"""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.engine.test_examples import node, phases, run
from workflows.engine import Engine, LocalObjects, SubmitError, from_file, prepare, signals

HERE = Path(__file__).parent


def log(engine: Engine, wf: dict[str, Any], display: str) -> str:
    return engine.store.log_path(wf["metadata"]["name"], node(wf, display)["id"]).read_text()


def test_expression_tags_when_and_expression_outputs(engine: Engine) -> None:
    wf = run(engine, "expressions")
    assert wf["status"]["phase"] == "Succeeded"
    looped = sorted(
        n["outputs"]["result"] for n in wf["status"]["nodes"].values() if n["displayName"].startswith("times-ten(")
    )
    assert looped == ["20", "30"]  # withParam from filter(), each item times ten
    assert phases(wf)["heads"] == "Succeeded" and phases(wf)["tails"] == "Skipped"
    assert node(wf, "heads")["outputs"]["result"] == "BARIS"  # sprig.upper over jsonpath
    outputs = {p["name"]: p["value"] for p in node(wf, wf["metadata"]["name"])["outputs"]["parameters"]}
    assert outputs == {"winner": "BARIS", "fallback": "none"}


def test_hooks_fire_once_each_and_the_exit_hook_sees_outputs(engine: Engine) -> None:
    wf = run(engine, "hooks")
    assert wf["status"]["phase"] == "Succeeded"
    name = wf["metadata"]["name"]
    hooks = {
        n["name"].removeprefix(name): n
        for n in wf["status"]["nodes"].values()
        if ".hooks." in n["name"] or n["name"].endswith(".onExit")
    }
    assert sorted(hooks) == [
        ".hooks.running",
        ".onExit",
        "[0].produce.hooks.done",
        "[0].produce.hooks.started",
        "[0].produce.onExit",
    ]
    assert all(h["phase"] == "Succeeded" for h in hooks.values())
    assert hooks["[0].produce.onExit"]["inputs"]["parameters"][0]["value"] == "got hello"
    assert hooks[".onExit"]["inputs"]["parameters"][0]["value"] == "workflow Succeeded"
    assert hooks["[0].produce.hooks.started"]["startedAt"] <= node(wf, "produce")["finishedAt"]


def test_container_set_runs_by_dependencies_in_one_workspace(engine: Engine) -> None:
    wf = run(engine, "container-set")
    assert wf["status"]["phase"] == "Succeeded"
    group = node(wf, "group")
    assert group["type"] == "Pod" and group["outputs"]["result"] == "ab"
    assert group["outputs"]["parameters"] == [{"name": "b", "value": "b"}]
    containers = {n["displayName"]: n for n in wf["status"]["nodes"].values() if n["type"] == "Container"}
    assert containers["main"]["startedAt"] >= max(containers["a"]["finishedAt"], containers["b"]["finishedAt"])
    assert node(wf, "broken")["phase"] == "Failed"
    assert containers["first"]["phase"] == "Failed"
    assert [
        n["phase"]
        for n in wf["status"]["nodes"].values()
        if n["type"] == "Container" and n["boundaryID"] and n["displayName"] == "main" and n["phase"] != "Succeeded"
    ] == ["Omitted"]


def test_daemon_serves_its_scope_on_its_own_address_then_stops(engine: Engine) -> None:
    wf = run(engine, "daemon")
    assert wf["status"]["phase"] == "Succeeded"
    server, client = node(wf, "server"), node(wf, "client")
    assert server["daemoned"] and server["podIP"].startswith("127.") and server["podIP"] != "127.0.0.1"
    assert client["outputs"]["result"] == "served"
    assert server["phase"] == "Succeeded" and server["message"] == "daemon stopped: its scope ended"
    assert server["finishedAt"] >= client["finishedAt"]


def test_volumes_claims_subpaths_init_containers_and_named_claims(engine: Engine) -> None:
    first = run(engine, "volumes")
    second = run(engine, "volumes")
    assert first["status"]["phase"] == second["status"]["phase"] == "Succeeded"
    assert node(first, "read")["outputs"]["result"].split() == ["hello", "from-init", "1"]
    assert node(second, "read")["outputs"]["result"].split()[-1] == "2"  # the named claim outlives the run


def test_global_outputs_configmaps_inline_cluster_templates_and_skipped_outputs(engine: Engine) -> None:
    saved = engine.objects
    engine.objects = LocalObjects(configmaps={"test-settings": {"greeting": "hi", "colour": "blue"}})
    engine.library.add(
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "ClusterWorkflowTemplate",
            "metadata": {"name": "test-cluster-echo"},
            "spec": {
                "templates": [
                    {
                        "name": "echo",
                        "inputs": {"parameters": [{"name": "text"}]},
                        "container": {"image": "busybox", "command": ["echo", "{{inputs.parameters.text}}"]},
                    }
                ]
            },
        }
    )
    try:
        wf = run(engine, "outputs-and-refs")
    finally:
        engine.objects = saved
    assert wf["status"]["phase"] == "Succeeded"
    assert wf["status"]["outputs"]["parameters"] == [{"name": "shared", "value": "shared-blue"}]
    assert node(wf, "inline")["outputs"]["result"] == "shared-blue hi"
    assert node(wf, "cluster")["outputs"]["result"] == "from-producer"
    assert node(wf, "consumer")["outputs"]["result"] == "from-consumer"


def test_a_missing_configmap_key_errors_the_run_naming_it(engine: Engine) -> None:
    wf = run(engine, "outputs-and-refs")
    assert wf["status"]["phase"] == "Error"
    assert "ConfigMap 'test-settings' has no key 'greeting'" in wf["status"]["message"]


@pytest.fixture
def pong() -> Iterator[str]:
    class Pong(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"pong")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Pong)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/ping"
    server.shutdown()


def _in_background(engine: Engine, workflow: dict[str, Any]) -> tuple[threading.Thread, dict[str, Any]]:
    thread = threading.Thread(target=engine.run, args=(workflow,), daemon=True)
    thread.start()
    return thread, workflow


def _until(check: Any, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.1)


def test_http_success_condition_timed_and_resumed_suspends(engine: Engine, pong: str) -> None:
    workflow = prepare(engine.library, from_file(HERE / "workflows" / "http-suspend.yaml"), {"url": pong})
    thread, wf = _in_background(engine, workflow)
    run_dir = engine.store.run_dir(wf["metadata"]["name"])
    _until(lambda: any(n["displayName"] == "approve" for n in wf["status"].get("nodes", {}).values()))
    assert node(wf, "approve")["phase"] == "Running" and node(wf, "approve")["type"] == "Suspend"
    signals.resume(run_dir, {"answer": "yes"})
    thread.join(60)
    assert wf["status"]["phase"] == "Succeeded"
    assert node(wf, "ok")["type"] == "HTTP" and node(wf, "ok")["outputs"]["result"] == "pong"
    assert node(wf, "refused")["phase"] == "Failed" and "successCondition" in node(wf, "refused")["message"]
    waited = node(wf, "wait")
    from workflows.engine.state.nodes import epoch

    assert epoch(waited["finishedAt"]) - epoch(waited["startedAt"]) >= 1.0
    assert node(wf, "show")["outputs"]["result"] == "answer=yes"


def _until_started(wf: dict[str, Any], step: str) -> None:
    _until(
        lambda: any(n["displayName"] == step and n.get("hostNodeName") for n in wf["status"].get("nodes", {}).values())
    )


@pytest.mark.parametrize("strategy", ["stop", "terminate"])
def test_stop_runs_the_exit_handler_and_terminate_does_not(engine: Engine, tmp_path: Path, strategy: str) -> None:
    marker = tmp_path / "m"
    workflow = prepare(engine.library, from_file(HERE / "workflows" / "control.yaml"), {"marker": str(marker)})
    thread, wf = _in_background(engine, workflow)
    _until_started(wf, "flaky")
    signals.request(engine.store.run_dir(wf["metadata"]["name"]), strategy)
    thread.join(30)
    assert not thread.is_alive()
    assert wf["status"]["phase"] == "Failed"
    assert node(wf, "flaky")["message"] == f"workflow shutdown with strategy:  {strategy.capitalize()}"  # Argo's
    assert wf["status"]["message"] == f"Stopped with strategy '{strategy.capitalize()}'"
    assert (tmp_path / "m.exit").exists() == (strategy == "stop")


def test_a_retried_run_keeps_what_succeeded(engine: Engine, tmp_path: Path) -> None:
    marker = tmp_path / "m"
    workflow = prepare(engine.library, from_file(HERE / "workflows" / "control.yaml"), {"marker": str(marker)})
    thread, wf = _in_background(engine, workflow)
    _until_started(wf, "flaky")
    run_dir = engine.store.run_dir(wf["metadata"]["name"])
    signals.request(run_dir, "terminate")
    thread.join(30)
    (run_dir / "terminate").unlink()
    (tmp_path / "m.pass").write_text("")
    again = engine.run(signals.for_retry(engine.store.load(wf["metadata"]["name"])))
    assert again["status"]["phase"] == "Succeeded"
    assert node(again, "quick")["message"].startswith("reused")
    assert node(again, "quick")["outputs"]["parameters"] == [{"name": "v", "value": "value"}]
    assert (tmp_path / "m.quick").read_text().count("run") == 1  # the succeeded step did not run again


def test_what_needs_a_cluster_is_refused_before_anything_runs(engine: Engine) -> None:
    workflow = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": "refused-"},
        "spec": {
            "entrypoint": "main",
            "templates": [
                {"name": "main", "resource": {"action": "create", "manifest": "{}"}},
                {"name": "b", "container": {"image": "influxdb:1.2"}},
            ],
        },
    }
    with pytest.raises(SubmitError, match=r"resource templates create Kubernetes objects") as info:
        prepare(engine.library, workflow, {})
    assert "the image 'influxdb:1.2' has no command here" in str(info.value)


def test_depends_on_omitted_and_an_expression_pipe(engine: Engine) -> None:
    wf = run(engine, "depends-omitted")
    assert wf["status"]["phase"] == "Succeeded", wf["status"]
    assert {k: v for k, v in phases(wf).items() if len(k) == 1} == {
        "a": "Succeeded", "b": "Omitted", "c": "Succeeded", "d": "Omitted",
    }  # fmt: skip
    assert wf["metadata"]["name"].upper() in log(engine, wf, "c")  # `x | upper()` is `upper(x)`


def test_a_missing_command_and_sigterm_fail_in_argo_s_words(engine: Engine) -> None:
    wf = run(engine, "failure-words")
    missing, terminated = node(wf, "missing"), node(wf, "terminated")
    assert missing["phase"] in ("Error", "Failed") and "executable file not found in $PATH" in missing["message"]
    assert terminated["phase"] == "Failed" and terminated["message"] == "Error (exit code 143)"  # 128 + SIGTERM


@pytest.mark.parametrize(
    ("example", "failing", "running"), [("fail-fast-steps", "step1", "step2"), ("fail-fast-dag", "task1", "task2")]
)
def test_fail_fast_ends_in_argo_s_words(engine: Engine, example: str, failing: str, running: str) -> None:
    wf = run(engine, example)
    assert wf["status"]["phase"] == "Failed"
    assert wf["status"]["message"] == "template has failed or errored children and failFast enabled"
    assert (phases(wf)[failing], phases(wf)[running]) == ("Failed", "Succeeded")


def test_a_loop_over_nothing_is_a_skipped_node(engine: Engine) -> None:
    wf = run(engine, "loop-over-nothing")
    assert wf["status"]["phase"] == "Succeeded"
    empty = node(wf, "none")
    assert (empty["type"], empty["phase"], empty["message"]) == ("Skipped", "Skipped", "Skipped, empty params")
    assert phases(wf)["after"] == "Succeeded"


def test_template_defaults_reach_the_templates(engine: Engine) -> None:
    wf = run(engine, "template-defaults")
    assert wf["status"]["phase"] == "Succeeded"
    retry = next(n for n in wf["status"]["nodes"].values() if n["type"] == "Retry")  # the default retryStrategy
    attempt = wf["status"]["nodes"][retry["children"][0]]
    assert "default image" in engine.store.log_path(wf["metadata"]["name"], attempt["id"]).read_text()
