"""Unit tests of the executor's pure helpers: path mapping, retry policy, loops and node ids."""

from __future__ import annotations

from pathlib import Path

import pytest

from workflows.engine.items import item_label, sequence_items
from workflows.engine.kinds.retry import should_retry
from workflows.engine.pod.paths import path_mapping, remap
from workflows.engine.state.nodes import NodeError, node_id
from workflows.engine.state.objects import LocalObjects


def test_declared_paths_map_into_the_node_folder(tmp_path: Path) -> None:
    tmpl = {
        "inputs": {"artifacts": [{"name": "m", "path": "/tmp/message"}]},
        "outputs": {"parameters": [{"name": "p", "valueFrom": {"path": "/tmp/hera-outputs/parameters/p"}}]},
        "script": {"env": [{"name": "hera__outputs_directory", "value": "/tmp/hera-outputs"}]},
    }
    mapping = path_mapping(tmpl, tmp_path)
    assert mapping["/tmp/message"] == f"{tmp_path}/tmp/message"
    assert mapping["/tmp/hera-outputs"] == f"{tmp_path}/tmp/hera-outputs"
    assert (tmp_path / "tmp" / "hera-outputs" / "parameters").is_dir()


def test_remap_replaces_whole_paths_only() -> None:
    mapping = {"/tmp/a": "/n/tmp/a", "/tmp/a/b": "/n/tmp/a/b"}
    assert remap("cat /tmp/a/b > /tmp/a;", mapping) == "cat /n/tmp/a/b > /n/tmp/a;"
    assert remap("/tmp/ab /tmp/a.txt", mapping) == "/tmp/ab /tmp/a.txt"  # other files are left alone
    assert remap("cat /tmp/a* /tmp/a?", mapping) == "cat /n/tmp/a* /n/tmp/a?"  # a glob expands in the pod's folder


@pytest.mark.parametrize(
    ("policy", "phase", "expected"),
    [
        ("OnFailure", "Failed", True),
        ("OnFailure", "Error", False),
        ("OnError", "Failed", False),
        ("OnError", "Error", True),
        ("Always", "Failed", True),
        ("Always", "Error", True),
    ],
)
def test_retry_policy(policy: str, phase: str, expected: bool) -> None:
    assert should_retry(policy, phase) is expected


def test_sequences() -> None:
    assert sequence_items({"count": "3"}) == ["0", "1", "2"]
    assert sequence_items({"start": "5", "end": "7"}) == ["5", "6", "7"]
    assert sequence_items({"start": "3", "end": "1"}) == ["3", "2", "1"]
    assert sequence_items({"count": 2, "start": 1, "format": "n%02d"}) == ["n01", "n02"]


def test_item_labels_follow_argo_node_names() -> None:
    assert item_label("foo") == "foo"
    assert item_label(3) == "3"
    assert item_label({"tag": "3.6", "image": "alpine"}) == "image:alpine,tag:3.6"


def test_node_ids_are_stable_and_root_is_the_workflow_name() -> None:
    assert node_id("wf-abc", "wf-abc") == "wf-abc"
    assert node_id("wf-abc", "wf-abc.A") == node_id("wf-abc", "wf-abc.A") != node_id("wf-abc", "wf-abc.B")
    assert node_id("wf-abc", "wf-abc.A").startswith("wf-abc-")


def test_local_objects_name_what_is_missing() -> None:
    objects = LocalObjects(configmaps={"ctcd-config": {"A": "1"}}, secrets={})
    assert objects.lookup("configMapKeyRef", {"name": "ctcd-config", "key": "A"}) == "1"
    with pytest.raises(NodeError, match=r"ConfigMap 'ctcd-config' has no key 'B'"):
        objects.lookup("configMapKeyRef", {"name": "ctcd-config", "key": "B"})
    with pytest.raises(NodeError, match=r"Secret 's3' does not exist locally"):
        objects.all_of({"secretRef": {"name": "s3"}})
    assert objects.all_of({"secretRef": {"name": "s3", "optional": True}}) == {}
    assert objects.all_of({"configMapRef": {"name": "ctcd-config"}, "prefix": "X_"}) == {"X_A": "1"}
