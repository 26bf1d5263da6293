"""Registration against an in-memory registry that can lose its connection between calls."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from mlflow.exceptions import MlflowException

from workflows.platform import registry


class FlakyRegistry:
    """Just enough of MlflowClient; ``down_after`` calls succeed, then every call fails like a dead server."""

    def __init__(self, down_after: int | None = None) -> None:
        self.versions: list[SimpleNamespace] = []
        self.aliases: dict[str, str] = {}
        self.models: set[str] = set()
        self.calls = 0
        self.down_after = down_after

    def _call(self) -> None:
        self.calls += 1
        if self.down_after is not None and self.calls > self.down_after:
            raise MlflowException("API request failed: Connection refused")

    def get_registered_model(self, name: str) -> None:
        self._call()
        if name not in self.models:
            raise MlflowException("RESOURCE_DOES_NOT_EXIST")

    def create_registered_model(self, name: str, tags: dict[str, str]) -> None:
        self._call()
        self.models.add(name)

    def search_model_versions(self, filter_string: str) -> list[Any]:
        self._call()
        return [v for v in self.versions if f"run_id = '{v.run_id}'" in filter_string]

    def create_model_version(self, name: str, source: str, run_id: str, tags: dict[str, str], model_id: Any) -> Any:
        self._call()
        version = SimpleNamespace(name=name, version=str(len(self.versions) + 1), run_id=run_id, tags=dict(tags))
        self.versions.append(version)
        return version

    def set_model_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        self._call()
        self.versions[int(version) - 1].tags[key] = value

    def set_registered_model_alias(self, name: str, alias: str, version: str) -> None:
        self._call()
        self.aliases[alias] = version

    def delete_model_version(self, name: str, version: str) -> None:
        self._call()
        self.versions = [v for v in self.versions if v.version != version]


TAGS = {"ctcd.gate.decision": "better", "ctcd.run_id": "r1"}


def test_a_retry_after_a_lost_connection_completes_the_one_version() -> None:
    fake = FlakyRegistry(down_after=3)  # get, create model, search; then the server is gone
    with pytest.raises(MlflowException, match="Connection refused"):
        registry.register(fake, "intent-classifier", "runs:/r1/model", "r1", TAGS)
    fake.down_after = None  # the server is back; the step's retry runs register again
    assert registry.register(fake, "intent-classifier", "runs:/r1/model", "r1", TAGS) == "1"
    assert registry.register(fake, "intent-classifier", "runs:/r1/model", "r1", TAGS) == "1"
    assert len(fake.versions) == 1 and fake.aliases == {}  # no alias runs ahead of serving


def test_another_run_gets_its_own_version_and_missing_tags_are_completed() -> None:
    fake = FlakyRegistry()
    assert registry.register(fake, "m", "runs:/r1/model", "r1", {"a": "1"}) == "1"
    assert registry.register(fake, "m", "runs:/r2/model", "r2", {"a": "1"}) == "2"
    assert registry.register(fake, "m", "runs:/r1/model", "r1", {"a": "1", "b": "2"}) == "1"
    assert fake.versions[0].tags == {"a": "1", "b": "2"} and len(fake.versions) == 2
