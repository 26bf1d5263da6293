"""Production feedback against the real embedded S3: the hand-off queue, confirmed labels, and their way back into
training as a batch of origin ``feedback``. Each test has buckets of its own."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from models.contract import get
from serving import predlog
from workflows.platform.s3 import s3_client
from workflows.settings import Settings
from workflows.training import collection, datasets, feedback, provenance
from workflows.training.validation import DatasetError

TECHNIQUE = get("intent-classifier")


@pytest.fixture()
def store(platform: Settings) -> tuple[Settings, Any]:
    tag = uuid.uuid4().hex[:8]
    settings = platform.model_copy(update={"datasets_bucket": f"fb-data-{tag}", "predictions_bucket": f"fb-log-{tag}"})
    client = s3_client(settings)
    for bucket in (settings.datasets_bucket, settings.predictions_bucket):
        client.create_bucket(Bucket=bucket)
    first = TECHNIQUE.generate(1500, seed=4)
    datasets.collect(client, settings, TECHNIQUE, "first.csv", datasets.frame_to_csv(first), origin="generator")
    return settings, client


def _log(settings: Settings, client: Any, rows: list[tuple[str, str, bool, str]]) -> None:
    """Records as the gateway writes them: (request id, text, handed off, candidate)."""
    writer = predlog.LogWriter(lambda k, b: client.put_object(Bucket=settings.predictions_bucket, Key=k, Body=b))
    for request_id, text, handed, candidate in rows:
        writer.add(
            predlog.Record(
                request_id=request_id, time=predlog.now(), namespace="ctcd-production", service="intents",
                answered_by="intent-classifier", revision="r", model_version="1", channel="", inputs=[text],
                labels=["handoff" if handed else candidate], confidences=[0.2 if handed else 0.9],
                handoffs=[handed], candidates=[candidate], latency_ms=1.0, status=200,
            )
        )  # fmt: skip
    writer.close()


def test_handed_off_questions_are_listed_and_confirmed_labels_train_as_a_feedback_batch(
    store: tuple[Settings, Any],
) -> None:
    settings, client = store
    labels = sorted(set(TECHNIQUE.generate(200, seed=4)["intent"]))
    rows = [(f"q{i}", f"a new way to ask number {i} about my money", i % 2 == 0, labels[i % 5]) for i in range(40)]
    _log(settings, client, rows)
    queue = feedback.handoffs(client, settings.predictions_bucket, "intents", "ctcd-production")
    assert [q["request_id"] for q in queue] == [f"q{i}" for i in range(0, 40, 2)]
    assert queue[0]["input"] == "a new way to ask number 0 about my money" and queue[0]["candidate"] == labels[0]
    confirmed = [(f"q{i}", labels[i % 3]) for i in range(40)]
    key, count = feedback.add(client, settings, "intents", confirmed)
    assert count == 40 and key.startswith("feedback/intents/")
    with pytest.raises(DatasetError, match="has a confirmed label already"):
        feedback.add(client, settings, "intents", [("q1", labels[0])])
    month = collection.collect(client, settings, TECHNIQUE, "feedback")
    assert month.new_rows == 40
    origins = provenance.origins(client, settings.datasets_bucket, TECHNIQUE.dataset)
    assert origins[month.keys[-1]] == "feedback"
    assert collection.collect(client, settings, TECHNIQUE, "feedback").new_rows == 0  # each file is taken once


@pytest.mark.parametrize(
    ("given", "why"),
    [
        ([("nope", "x")], r"request 'nope' is not in intents's prediction log"),
        ([("q0", "no_such_intent")], r"label 'no_such_intent' is not a class of intents"),
        ([("q0", "oos"), ("q0", "oos")], r"row 2: request 'q0' has a confirmed label already"),
    ],
)
def test_bad_labels_are_refused_whole(store: tuple[Settings, Any], given: list[tuple[str, str]], why: str) -> None:
    settings, client = store
    _log(settings, client, [("q0", "what is the weather on mars", True, "x")])
    with pytest.raises(DatasetError, match=why):
        feedback.add(client, settings, "intents", given)
    assert feedback.labelled(client, settings, "intents") == []  # nothing half-written


def test_feedback_never_repeats_a_test_input(store: tuple[Settings, Any]) -> None:
    settings, client = store
    test = datasets.read_object(client, settings.datasets_bucket, f"{TECHNIQUE.dataset}/{datasets.TEST_KEY}")
    question, label = test.decode().splitlines()[1].rsplit(",", 1)
    other = next(x for x in sorted(set(TECHNIQUE.generate(200, seed=4)["intent"])) if x != label)
    _log(settings, client, [("t0", question.strip('"').upper(), True, label)])  # a test question, shouted
    feedback.add(client, settings, "intents", [("t0", other)])  # and relabelled
    month = collection.collect(client, settings, TECHNIQUE, "feedback")
    assert month.new_rows == 0 and month.test_overlap == 1
    assert json.loads(client.get_object(Bucket=settings.datasets_bucket, Key="intents/collections.json")["Body"].read())


def test_the_readout_equals_a_recount_from_the_s3_log(store: tuple[Settings, Any]) -> None:
    import random

    from workflows.delivery import readout

    settings, client = store
    rng = random.Random(9)
    labels = sorted(set(TECHNIQUE.generate(200, seed=4)["intent"]))[:4]
    writer = predlog.LogWriter(lambda k, b: client.put_object(Bucket=settings.predictions_bucket, Key=k, Body=b))
    truth = {}
    for i in range(300):
        version = "2" if rng.random() < 0.3 else "1"
        guess, handed = rng.choice(labels), rng.random() < 0.1
        truth[f"r{i}"] = guess if rng.random() < (0.9 if version == "2" else 0.7) else rng.choice(labels)
        writer.add(
            predlog.Record(
                request_id=f"r{i}", time=predlog.now(), namespace="ctcd-production", service="intent-classifier",
                answered_by="intent-classifier", revision=f"rev-{version}", model_version=version, channel="",
                inputs=[f"question {i}"], labels=["handoff" if handed else guess], confidences=[rng.random()],
                handoffs=[handed], candidates=[guess], latency_ms=rng.uniform(1, 30),
                status=500 if rng.random() < 0.02 else 200,
            )
        )  # fmt: skip
    writer.close()
    feedback.add(client, settings, "intents", [(k, v) for k, v in truth.items() if int(k[1:]) % 2 == 0])
    found = readout.arms(client, settings, "intent-classifier", "ctcd-production", 31)
    recount: dict[str, list[dict[str, Any]]] = {}
    for item in client.list_objects_v2(Bucket=settings.predictions_bucket, Prefix="intent-classifier/")["Contents"]:
        for line in client.get_object(Bucket=settings.predictions_bucket, Key=item["Key"])["Body"].read().splitlines():
            record = json.loads(line)
            recount.setdefault(record["model_version"], []).append(record)
    for arm in found["arms"]:
        mine = recount[arm["model_version"]]
        labelled = [r for r in mine if int(r["request_id"][1:]) % 2 == 0]
        right = sum(r["candidates"][0] == truth[r["request_id"]] for r in labelled)
        assert arm["requests"] == len(mine)
        assert arm["errors_5xx"] == pytest.approx(sum(r["status"] >= 500 for r in mine) / len(mine))
        assert arm["handoff_rate"] == pytest.approx(sum(r["handoffs"][0] for r in mine) / len(mine))
        assert (arm["labelled"], arm["accuracy"]) == (len(labelled), pytest.approx(right / len(labelled)))
        assert arm["accuracy_low"] <= arm["accuracy"] <= arm["accuracy_high"]
    (gap,) = found["differences"]
    assert gap["arm"] == "intent-classifier v2" and gap["low"] <= gap["accuracy_difference"] <= gap["high"]


def test_post_v1_feedback_checks_against_the_real_log_and_labels_each_request_once(
    store: tuple[Settings, Any],
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    from workflows.delivery import collector

    settings, client = store
    labels = sorted(set(TECHNIQUE.generate(200, seed=4)["intent"]))
    _log(settings, client, [(f"h{i}", f"question number {i}", i % 2 == 0, labels[0]) for i in range(6)])
    desk = feedback.Desk(client, settings)
    http = TestClient(Starlette(routes=[collector.feedback_route(desk, None)]))
    one = http.post("/v1/feedback", json={"request_id": "h0", "label": labels[1]})
    assert one.status_code == 200 and one.json()["labelled"] == 1
    unknown = http.post(
        "/v1/feedback", json=[{"request_id": "h1", "label": labels[0]}, {"request_id": "zz", "label": "x"}]
    )
    assert unknown.status_code == 422 and "request 'zz' is not in the prediction log" in unknown.json()["error"]
    wrong = http.post("/v1/feedback", json={"request_id": "h1", "label": "no_such"})
    assert wrong.status_code == 422 and "use one of the task's classes" in wrong.json()["hint"]
    with ThreadPoolExecutor(8) as pool:  # eight callers confirm the same question at once
        codes = list(
            pool.map(
                lambda _: http.post("/v1/feedback", json={"request_id": "h2", "label": "oos"}).status_code, range(8)
            )
        )
    assert sorted(codes) == [200] + [422] * 7
    stored = {r["request_id"]: r["label"] for r in feedback.labelled(client, settings, "intents")}
    assert stored == {"h0": labels[1], "h2": "oos"}  # the refused batch left nothing behind
    later = feedback.Desk(client, settings)  # a restarted service reads what was labelled
    with pytest.raises(DatasetError, match="has a confirmed label already"):
        later.confirm([("h2", "oos")])


def test_a_label_for_a_hashed_input_counts_but_never_trains(store: tuple[Settings, Any]) -> None:
    settings, client = store
    labels = sorted(set(TECHNIQUE.generate(200, seed=4)["intent"]))
    writer = predlog.LogWriter(lambda k, b: client.put_object(Bucket=settings.predictions_bucket, Key=k, Body=b))
    record = predlog.Record(
        request_id="secret-1", time=predlog.now(), namespace="ctcd-production", service="intents",
        answered_by="intent-classifier", revision="r", model_version="1", channel="",
        inputs=[predlog.keyed_hash("my card number is 4111", b"k")], labels=[labels[0]], confidences=[0.9],
        handoffs=[False], candidates=[labels[0]], latency_ms=1.0, status=200, hashed=["*"],
    )  # fmt: skip
    writer.add(record)
    writer.close()
    feedback.add(client, settings, "intents", [("secret-1", labels[1])])
    (row,) = feedback.labelled(client, settings, "intents")
    assert row["hashed"] == ["*"] and row["text"] == ""  # the label stands; the hash is not kept as text
    assert collection.collect(client, settings, TECHNIQUE, "feedback").new_rows == 0
