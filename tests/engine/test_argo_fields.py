"""Fields that are no longer accepted and then ignored: each now acts as it does on Argo, or the run says it did not.

Each example is written as Argo's docs write it; the outcome is Argo's (phases, flags, status fields, messages).
"""

from __future__ import annotations

import http.server
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.engine.test_examples import node, run
from workflows.engine import (
    Engine,
    LocalObjects,
    RunStore,
    TemplateLibrary,
    artifact_garbage,
    collect_artifacts,
    from_file,
    prepare,
)
from workflows.engine.spec.submit import spec_warnings
from workflows.platform.s3 import s3_client
from workflows.settings import Settings

HERE = Path(__file__).parent


@pytest.fixture
def engine(fresh_engine: Engine) -> Engine:
    """Fresh step processes only: what is tested here is decided by the node kinds, not by how a step starts."""
    return fresh_engine


def test_the_workflow_s_retry_strategy_metadata_and_a_container_set_s_retries(engine: Engine, tmp_path: Path) -> None:
    wf = run(engine, "workflow-fields", marker=str(tmp_path / "m"))
    assert wf["status"]["phase"] == "Succeeded", wf["status"]
    retried = next(n for n in wf["status"]["nodes"].values() if n["displayName"] == "flaky" and n["type"] == "Retry")
    attempts = [wf["status"]["nodes"][c] for c in retried["children"]]
    assert [a["phase"] for a in attempts] == ["Failed", "Succeeded"]
    assert attempts[0]["nodeFlag"] == {"retried": True}
    assert wf["metadata"]["labels"]["env"] == "prod" and wf["metadata"]["labels"]["team"] == "ml"
    assert wf["metadata"]["annotations"]["owner"] == "ctcd"
    labels = node(wf, "labels(0)")  # every template is retried, so the pod is the Retry node's first child
    assert labels["outputs"]["result"] == "prod ml ctcd"
    main = next(n for n in wf["status"]["nodes"].values() if n["displayName"] == "main" and n["type"] == "Container")
    assert (
        main["phase"] == "Succeeded"
        and "retry 1 of 1" in engine.store.log_path(wf["metadata"]["name"], main["id"]).read_text()
    )
    warning = next(c for c in wf["status"]["conditions"] if c["type"] == "SpecWarnings")
    assert "spec.nodeSelector" in warning["message"] and "spec.templates[1].script.resources" in warning["message"]


def test_spec_warnings_list_at_most_twelve_paths() -> None:
    condition = spec_warnings([f"spec.templates[{i}].container.resources" for i in range(15)])
    assert condition["type"] == "SpecWarnings" and condition["message"].endswith("and 3 more")


def _exists(client: Any, bucket: str, key: str) -> bool:
    return client.list_objects_v2(Bucket=bucket, Prefix=key).get("KeyCount", 0) > 0


def test_logs_archived_buckets_made_and_artifacts_collected(engine: Engine, s3_only: Settings) -> None:
    wf = run(engine, "artifacts-lifecycle")
    assert wf["status"]["phase"] == "Succeeded", wf["status"]
    pod = node(wf, wf["metadata"]["name"])
    arts = {a["name"]: a for a in pod["outputs"]["artifacts"]}
    assert set(arts) == {"on-completion", "on-deletion", "elsewhere", "main-logs"}
    client = s3_client(s3_only)
    log = client.get_object(Bucket=arts["main-logs"]["s3"]["bucket"], Key=arts["main-logs"]["s3"]["key"])
    assert b"tool ran" in log["Body"].read()  # the input kept its mode 0755: it ran as a program
    assert arts["on-completion"]["deleted"] is True
    assert not _exists(client, arts["on-completion"]["s3"]["bucket"], arts["on-completion"]["s3"]["key"])
    assert _exists(client, "ctcd-made-on-demand", arts["elsewhere"]["s3"]["key"])
    deletion = arts["on-deletion"]
    assert "deleted" not in deletion and _exists(client, deletion["s3"]["bucket"], deletion["s3"]["key"])
    assert wf["status"]["artifactRepositoryRef"]["default"] is True
    collect_artifacts(client, artifact_garbage(wf, "OnWorkflowDeletion"))  # what `ctcd runs delete` does
    assert not _exists(client, deletion["s3"]["bucket"], deletion["s3"]["key"])


def test_an_artifact_repository_ref_names_the_bucket_or_errors_the_run(engine: Engine) -> None:
    workflow = prepare(engine.library, from_file(HERE / "workflows" / "steps.yaml"), {})
    workflow["spec"]["artifactRepositoryRef"] = {"configMap": "my-repos", "key": "minio"}
    engine.objects = LocalObjects()
    missing = engine.run(workflow)
    assert missing["status"]["phase"] == "Error"
    assert "error in getting artifact repository" in missing["status"]["message"]
    engine.objects = LocalObjects(configmaps={"my-repos": {"minio": "s3:\n  bucket: team-bucket\n"}})
    again = engine.run(prepare(engine.library, {**workflow, "status": {}}, {}))
    ref = again["status"]["artifactRepositoryRef"]
    assert again["status"]["phase"] == "Succeeded"
    assert ref["configMap"] == "my-repos" and ref["artifactRepository"]["s3"]["bucket"] == "team-bucket"


def test_a_run_past_its_ttl_is_deleted(engine: Engine) -> None:
    workflow = prepare(engine.library, from_file(HERE / "workflows" / "steps.yaml"), {})
    workflow["spec"]["ttlStrategy"] = {"secondsAfterFailure": 3600, "secondsAfterSuccess": 0}
    wf = engine.run(workflow)
    name = wf["metadata"]["name"]
    assert wf["status"]["phase"] == "Succeeded"
    store = RunStore(engine.store.root.parent)
    with pytest.raises(KeyError, match="deleted by its ttlStrategy"):
        store.load(name)
    assert name not in [w["metadata"]["name"] for w in store.list()]
    assert not store.run_dir(name).exists()


@pytest.mark.parametrize("shutdown", ["Terminate", "Stop"])
def test_a_workflow_created_with_shutdown_ends_at_once(engine: Engine, shutdown: str) -> None:
    workflow = prepare(engine.library, from_file(HERE / "workflows" / "steps.yaml"), {})
    workflow["spec"]["shutdown"] = shutdown
    wf = engine.run(workflow)
    assert wf["status"]["phase"] == "Failed"
    assert all(n["phase"] != "Succeeded" for n in wf["status"]["nodes"].values() if n["type"] == "Pod")


@pytest.fixture
def page() -> Iterator[str]:
    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            ok = self.headers.get("X-Token") == "t0ken" and self.path == "/page.txt"
            self.send_response(200 if ok else 404)
            self.end_headers()
            self.wfile.write(b"served page" if ok else b"no")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/page.txt"
    server.shutdown()


def test_an_http_input_artifact_is_fetched_with_its_headers(engine: Engine, page: str) -> None:
    wf = run(engine, "http-artifact", url=page)
    assert wf["status"]["phase"] == "Succeeded", wf["status"]
    assert node(wf, wf["metadata"]["name"])["outputs"]["result"] == "served page"
    gone = run(engine, "http-artifact", url=page.replace("page.txt", "nothing"))
    assert gone["status"]["phase"] in ("Error", "Failed")


def _until(check: Any, timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


def test_a_run_waiting_for_a_mutex_names_its_holder(engine: Engine) -> None:
    first, second = (prepare(engine.library, from_file(HERE / "workflows" / "mutex-holder.yaml"), {}) for _ in "ab")
    threads = [threading.Thread(target=engine.run, args=(w,), daemon=True) for w in (first, second)]
    threads[0].start()
    _until(lambda: "holding" in first["status"].get("synchronization", {}).get("mutex", {}))
    assert first["status"]["synchronization"]["mutex"]["holding"][0]["holder"] == first["metadata"]["name"]
    threads[1].start()
    _until(lambda: "waiting" in second["status"].get("synchronization", {}).get("mutex", {}))
    waiting = second["status"]["synchronization"]["mutex"]["waiting"][0]
    assert waiting == {"mutex": "default/Mutex/holder-test", "holder": first["metadata"]["name"]}
    assert second["status"]["message"] == "Waiting for default/Mutex/holder-test lock. Lock status: 0/1"
    for thread in threads:
        thread.join(timeout=60)
    assert [w["status"]["phase"] for w in (first, second)] == ["Succeeded", "Succeeded"]
    assert "synchronization" not in first["status"] and "synchronization" not in second["status"]


def test_a_data_template_lists_and_filters_a_bucket(engine: Engine, s3_only: Settings) -> None:
    client, bucket = s3_client(s3_only), f"data-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=bucket)
    for key, body in (("a/main.log", "log a"), ("b/main.log", "log b"), ("c/other.txt", "not a log")):
        client.put_object(Bucket=bucket, Key=key, Body=body.encode())
    wf = run(engine, "data-template", bucket=bucket)
    assert wf["status"]["phase"] == "Succeeded", wf["status"]
    assert json.loads(node(wf, "list")["outputs"]["result"]) == ["a/main.log", "b/main.log"]
    read = sorted(
        n["outputs"]["result"] for n in wf["status"]["nodes"].values() if n["displayName"].startswith("process(")
    )
    assert read == ["log a", "log b"]


def test_an_unreachable_s3_at_start_leaves_the_run_to_its_steps(tmp_path: Path) -> None:
    def unreachable() -> Any:
        raise ConnectionError("S3 is down")

    engine = Engine(
        store=RunStore(tmp_path / "runs"),
        library=TemplateLibrary([]),
        s3=unreachable,
        artifacts_bucket="ctcd-artifacts",
    )
    engine.objects = LocalObjects(configmaps={"repos": {"other": "s3:\n  bucket: elsewhere\n"}})
    workflow = prepare(engine.library, from_file(HERE / "workflows" / "steps.yaml"), {})
    workflow["spec"]["artifactRepositoryRef"] = {"configMap": "repos", "key": "other"}
    wf = engine.run(workflow)
    assert wf["status"]["phase"] == "Succeeded"  # nothing here moves an artifact, so nothing needed S3
    assert wf["status"]["artifactRepositoryRef"]["artifactRepository"]["s3"]["bucket"] == "elsewhere"
