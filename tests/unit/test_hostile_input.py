"""Input a hostile or careless user sends: refused by name before anything runs, never echoing a secret file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from models.contract import get
from workflows.training import sources
from workflows.training.history import _find_batch
from workflows.training.validation import DatasetError

INTENT = get("intent-classifier").spec
ACTIVE = ["intents/train/batch-0000.csv", "intents/train/batch-0001.csv"]


@pytest.mark.parametrize("given", ["１", "٠", "batch-０００１", "1.5"])
def test_only_ascii_digits_name_a_batch(given: str) -> None:
    with pytest.raises(DatasetError, match=rf"has no active batch '{given}'"):
        _find_batch(ACTIVE, given, "intents", "b")


@pytest.mark.parametrize("given", ["1", "0001", "batch-0001", "batch-0001.csv"])
def test_ordinary_batch_names_still_work(given: str) -> None:
    assert _find_batch(ACTIVE, given, "intents", "b") == ACTIVE[1]


def test_a_symlink_into_a_system_folder_is_refused_without_reading_it(tmp_path: Path) -> None:
    secret = "/etc/shadow" if os.path.exists("/etc/shadow") else "/etc/passwd"
    first_line = Path(secret).read_text().splitlines()[0]
    link = tmp_path / "train.csv"
    link.symlink_to(secret)
    with pytest.raises(DatasetError, match=r"train\.csv: resolves into /etc, a system or credentials folder") as caught:
        sources.read_source(None, str(link))
    assert first_line not in str(caught.value)


def test_a_device_or_a_credentials_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="system or credentials folder"):
        sources.read_source(None, "/dev/zero")
    keys = tmp_path / ".aws"
    keys.mkdir()
    (keys / "credentials.csv").write_text("text,intent\nx,y\n")
    with pytest.raises(DatasetError, match="system or credentials folder"):
        sources.read_source(None, str(keys / "credentials.csv"))


def test_an_ordinary_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "ok.csv"
    path.write_text("text,intent\nx,y\n")
    assert sources.read_source(None, str(path)) == b"text,intent\nx,y\n"


@pytest.mark.parametrize(
    ("overrides", "why"),
    [
        ({"C": "x"}, r"hyper-parameter 'C': 'x' is not of the declared kind"),
        ({"C": [0.5, "x"]}, r"hyper-parameter 'C'"),
        ({"cv_folds": 2.5}, r"hyper-parameter 'cv_folds': 2\.5"),
        ({"cv_folds": True}, r"hyper-parameter 'cv_folds': True"),
        ({"gamma": 1}, r"intent-classifier has no hyper-parameter 'gamma' \(declared: C, cv_folds, embedding_dims\)"),
        ([1], r"must be a JSON object, not list"),
    ],
)
def test_hyperparameters_are_checked_against_the_declared_ones(overrides: object, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        INTENT.check_hyperparameters(overrides)


def test_declared_hyperparameters_of_their_kind_pass() -> None:
    assert INTENT.check_hyperparameters({"C": 1, "cv_folds": 2}) == {"C": 1, "cv_folds": 2}
    assert INTENT.check_hyperparameters({"C": [0.5, 2]}) == {"C": [0.5, 2]}
    assert get("intent-spacy").spec.check_hyperparameters({"learn_rate": 0.01, "architecture": "ensemble"})


@pytest.mark.parametrize("location", ["s3://ctcd-datasets/../x", "s3://ctcd-datasets/a/../../x/", "s3://b//etc/"])
def test_a_collection_location_with_dot_dot_is_refused_not_read(location: str) -> None:
    from workflows.training.collection import from_s3

    with pytest.raises(DatasetError, match=r"may not contain '\.\.' or start with '/'"):
        from_s3(None, location, [], get("intent-classifier"))


def test_route_refuses_a_technique_outside_the_task_even_at_weight_0(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from workflows.cli.app import app

    weights = "intent-classifier=100,invoice-matcher=0"
    env = {"CTCD_STATE_DIR": str(tmp_path), "CTCD_GIT_REMOTE": str(tmp_path / "none.git")}
    result = CliRunner().invoke(app, ["route", "intents", "--weights", weights], env=env)
    assert result.exit_code == 1
    assert "invoice-matcher does not solve task intents" in result.output


def test_a_retried_steps_attempts_answer_to_its_name() -> None:
    from workflows.cli.runs import _step_of

    assert [_step_of(n) for n in ("train(0)", "train(12)", "train", "load-data(1)")] == [
        "train",
        "train",
        "train",
        "load-data",
    ]


def test_the_signature_lists_what_serving_answers() -> None:
    from workflows.steps.mlflow_logging import signature

    assert signature(get("intent-classifier")).outputs.input_names() == ["label", "confidence", "reason", "candidate"]
    assert signature(get("invoice-matcher")).outputs.input_names() == ["label", "confidence"]
