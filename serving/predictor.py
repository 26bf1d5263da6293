"""The generic ctcd predictor: one ``kserve.Model`` that serves any technique's registered model.

``load()`` accepts exactly one model folder (an MLflow model with ``MLmodel`` and ``model.pkl``), verifies
the file's sha256 against the registry's tag before unpickling anything, and reads the input columns from the
model's signature.  ``predict()`` speaks v1 (``{"instances": [...]}``) and v2 (Open Inference Protocol) and
turns every bad payload into ``InvalidInput`` (HTTP 400) with a message; outputs are ``label`` and
``confidence`` (the probability of the predicted class).  A model registered with a hand-off threshold
(``ctcd_handoff`` in its MLmodel metadata) answers ``handoff`` below it, and wherever its answer is the
out-of-scope class the metadata names, with the ``reason`` and its best ``candidate``, so that a person takes
the question.  Requests that wait while the model is busy are
scored together in one vectorized call (``serving.batcher``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from pathlib import Path
from typing import Any

import kserve
import yaml
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

from models import values
from serving.batcher import Batcher

_logger = logging.getLogger(__name__)
MODEL_FILE = "model.pkl"
MAX_ROWS = 10_000
HANDOFF = "handoff"
DEADLINE_HEADER = "x-ctcd-deadline"
V2_DATATYPE = {"double": "FP64", "float": "FP64", "number": "FP64", "long": "INT64", "integer": "INT64"}
V2_DATATYPES = (
    "BOOL",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FP16",
    "FP32",
    "FP64",
    "BYTES",
)


class ArtifactError(RuntimeError):
    """The model folder is missing, ambiguous or fails its sha256 check."""


def _columns(model_dir: Path) -> list[tuple[str, str]]:
    """Input names and types: the signature's, refined by ``metadata.ctcd_input_types`` (which knows dates)."""
    mlmodel = yaml.safe_load((model_dir / "MLmodel").read_text())
    signature = (mlmodel.get("signature") or {}).get("inputs")
    if not signature:
        raise ArtifactError(f"{model_dir}/MLmodel has no input signature; register models through ctcd")
    declared = (mlmodel.get("metadata") or {}).get("ctcd_input_types") or {}
    return [(c["name"], str(declared.get(c["name"], c["type"]))) for c in yaml.safe_load(signature)]


def _handoff(model_dir: Path) -> dict[str, Any] | None:
    """The hand-off threshold and its reason from the MLmodel metadata, when the model has one."""
    mlmodel = yaml.safe_load((model_dir / "MLmodel").read_text())
    entry = (mlmodel.get("metadata") or {}).get("ctcd_handoff")
    if not entry:
        return None
    if not isinstance(entry.get("threshold"), (int, float)):
        raise ArtifactError(f"{model_dir}/MLmodel: ctcd_handoff.threshold is not a number")
    if not isinstance(entry.get("out_of_scope_label") or "", str):
        raise ArtifactError(f"{model_dir}/MLmodel: ctcd_handoff.out_of_scope_label is not a string")
    return dict(entry)


def find_artifact(model_dir: Path) -> Path:
    """The single model file of a folder.

    Raises:
        ArtifactError: No folder, no ``MLmodel``, or not exactly one ``model.pkl``.
    """
    if not model_dir.is_dir() or not (model_dir / "MLmodel").exists():
        raise ArtifactError(f"{model_dir} is not an MLflow model folder (no MLmodel file)")
    found = sorted(model_dir.rglob(MODEL_FILE))
    if len(found) != 1:
        raise ArtifactError(f"{model_dir} must hold exactly one {MODEL_FILE}, found {len(found)}")
    return found[0]


def verify(path: Path, expected_sha256: str) -> None:
    """Refuse a file whose sha256 differs from the registry's tag."""
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    if actual != expected_sha256:
        raise ArtifactError(
            f"{path} has sha256 {actual}, but the registry recorded {expected_sha256}; refusing to load"
        )


class Predictor(kserve.Model):  # type: ignore[misc]
    """Serves one registered model version.

    Args:
        name: Model name in URLs (the InferenceService name).
        model_dir: Folder of the MLflow model.
        sha256: The registry's ``ctcd.model_sha256`` tag; the file must match before it is loaded.
    """

    def __init__(self, name: str, model_dir: str, sha256: str) -> None:
        super().__init__(name)
        self.model_dir = Path(model_dir)
        self.sha256 = sha256
        self.model: Any = None
        self.columns: list[tuple[str, str]] = []
        self.classes: list[Any] = []
        self.handoff: dict[str, Any] | None = None
        self.batcher = Batcher(self._run, MAX_ROWS)

    def load(self) -> bool:
        """Verify and load the model; mark the predictor ready."""
        import cloudpickle

        artifact = find_artifact(self.model_dir)
        verify(artifact, self.sha256)
        with artifact.open("rb") as handle:
            self.model = cloudpickle.load(handle)
        self.columns = _columns(self.model_dir)
        self.handoff = _handoff(self.model_dir)
        self.classes = [c.item() if hasattr(c, "item") else c for c in self.model.classes_]
        self.ready = True
        return self.ready

    def get_input_types(self) -> list[dict[str, Any]]:
        """v2 model metadata: one 1-D tensor per signature input (``-1``: any number of rows)."""
        return [
            {"name": name, "datatype": V2_DATATYPE.get(kind, "BYTES"), "shape": [-1]} for name, kind in self.columns
        ]

    def get_output_types(self) -> list[dict[str, Any]]:
        """v2 model metadata: ``label`` (BYTES) and ``confidence`` (FP64) per row, and ``reason``/``candidate``.

        The last two (BYTES) only for a model that hands off.
        """
        extra = (
            [{"name": n, "datatype": "BYTES", "shape": [-1]} for n in ("reason", "candidate")] if self.handoff else []
        )
        return [
            {"name": "label", "datatype": "BYTES", "shape": [-1]},
            {"name": "confidence", "datatype": "FP64", "shape": [-1]},
            *extra,
        ]

    def _decide(self, labels: list[Any], confidence: list[float]) -> dict[str, list[Any]]:
        """The output columns: labels (``handoff`` below the threshold or out of scope) and confidences.

        For a model that hands off, also each row's reason ('' when answered) and best candidate.
        """
        columns: dict[str, list[Any]] = {"label": list(labels), "confidence": confidence}
        if not self.handoff:
            return columns
        threshold, why = float(self.handoff["threshold"]), str(self.handoff.get("reason", ""))
        oos = self.handoff.get("out_of_scope_label") or None
        columns["reason"] = [
            f"the model finds the question out of scope ({oos!r}, confidence {conf:.3f})"
            if oos is not None and str(label) == oos
            else f"confidence {conf:.3f} is below the hand-off threshold {threshold:.3f} ({why})"
            if conf < threshold
            else ""
            for label, conf in zip(labels, confidence, strict=True)
        ]
        columns["candidate"] = list(labels)
        columns["label"] = [HANDOFF if told else label for label, told in zip(labels, columns["reason"], strict=True)]
        return columns

    async def predict(
        self, payload: Any, headers: dict[str, str] | None = None, response_headers: dict[str, str] | None = None
    ) -> Any:
        """Predict labels and confidences for v1 or v2 requests (skipped once the gateway's deadline has passed)."""
        deadline = _deadline(headers or {})
        if isinstance(payload, InferRequest):
            columns = self._decide(*await self.batcher.submit(self._frame_from_v2(payload), deadline))
            rows = len(columns["label"])
            outputs = [
                InferOutput(name, [rows], "FP64", data=values)
                if name == "confidence"
                else InferOutput(name, [rows], "BYTES", data=[str(x) for x in values])
                for name, values in columns.items()
            ]
            return InferResponse(
                model_name=self.name, infer_outputs=outputs, response_id=payload.id or str(uuid.uuid4())
            )
        columns = self._decide(*await self.batcher.submit(self._frame_from_v1(payload), deadline))
        names = list(columns)
        return {"predictions": [dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)]}

    def _run(self, frame: Any) -> tuple[list[Any], list[float]]:
        import sklearn

        # Inputs were checked field by field already (types, finite numbers, lengths): skip sklearn's re-checks.
        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            proba = self.model.predict_proba(frame)
        best = proba.argmax(axis=1)
        labels = [self.classes[i] for i in best]
        return labels, [round(float(proba[row, i]), 6) for row, i in enumerate(best)]

    def _frame_from_v1(self, payload: Any) -> Any:
        if isinstance(payload, (bytes, str)):
            try:
                payload = json.loads(payload)
            except (ValueError, UnicodeDecodeError) as exc:
                raise InvalidInput(f"the body is not JSON ({exc}); send Content-Type: application/json") from exc
        if not isinstance(payload, dict) or "instances" not in payload:
            raise InvalidInput('expected a JSON object {"instances": [...]}')
        rows = payload["instances"]
        if not isinstance(rows, list) or not rows:
            raise InvalidInput('"instances" must be a non-empty list')
        if len(rows) > MAX_ROWS:
            raise InvalidInput(f"at most {MAX_ROWS} instances per request, got {len(rows)}")
        names = [name for name, _ in self.columns]
        records = []
        for i, row in enumerate(rows):
            if isinstance(row, dict):
                missing = [n for n in names if n not in row]
                if missing:
                    raise InvalidInput(f"instance {i}: missing field(s) {', '.join(missing)} (expected {names})")
                records.append([row[n] for n in names])
            elif isinstance(row, list) and len(row) == len(names):
                records.append(row)
            elif len(names) == 1 and not isinstance(row, (dict, list)):
                records.append([row])
            else:
                raise InvalidInput(f"instance {i}: expected an object with fields {names} or a list of {len(names)}")
        return self._typed(records)

    def _frame_from_v2(self, request: InferRequest) -> Any:
        names = [name for name, _ in self.columns]
        given = {i.name: i for i in request.inputs}
        if len(given) != len(request.inputs):
            twice = sorted({i.name for i in request.inputs if [j.name for j in request.inputs].count(i.name) > 1})
            raise InvalidInput(f"input(s) {', '.join(twice)} given more than once; send each input once")
        missing = [n for n in names if n not in given]
        if missing:
            raise InvalidInput(f"missing input(s) {', '.join(missing)} (expected {names})")
        columns = {name: _v2_column(given[name], kind) for name, kind in self.columns}
        lengths = {len(v) for v in columns.values()}
        if len(lengths) != 1:
            raise InvalidInput(f"inputs have different lengths {sorted(lengths)}")
        if lengths.pop() > MAX_ROWS:
            raise InvalidInput(f"at most {MAX_ROWS} rows per request")
        return self._typed([list(r) for r in zip(*columns.values(), strict=True)])

    def _typed(self, records: list[list[Any]]) -> Any:
        import pandas as pd

        out: dict[str, list[Any]] = {}
        for j, (name, kind) in enumerate(self.columns):
            values = []
            for i, record in enumerate(records):
                values.append(_check_value(record[j], kind, i, name))
            out[name] = values
        return pd.DataFrame(out)


def _deadline(headers: dict[str, str]) -> float:
    """When the gateway stops waiting (``x-ctcd-deadline``, Unix time); no header or a bad one: never."""
    given = headers.get(DEADLINE_HEADER) or headers.get(DEADLINE_HEADER.title()) or ""
    try:
        return float(given) if given else float("inf")
    except ValueError:
        return float("inf")


def _v2_column(tensor: Any, kind: str) -> list[Any]:
    """One v2 input's values, after the checks of the Open Inference Protocol: datatype, shape, dimensions."""
    name, datatype = tensor.name, str(tensor.datatype)
    expected = V2_DATATYPE.get(kind, "BYTES")
    if datatype not in V2_DATATYPES:
        raise InvalidInput(f"input {name!r}: unknown datatype {datatype[:20]!r} (use one of {', '.join(V2_DATATYPES)})")
    if (expected == "BYTES") != (datatype == "BYTES"):
        raise InvalidInput(f"input {name!r}: datatype {datatype} does not fit this input; send it as {expected}")
    data = tensor.data
    if not isinstance(data, list) or not data:
        raise InvalidInput(f"input {name!r} has no data")
    if any(isinstance(x, list) for x in data):
        raise InvalidInput(f"input {name!r} must be one-dimensional")
    shape = list(tensor.shape or [])
    if len(shape) != 1 or int(shape[0]) != len(data):
        raise InvalidInput(
            f"input {name!r}: shape {shape} does not fit its {len(data)} value(s); this model's inputs are "
            f"one-dimensional, shape [{len(data)}]"
        )
    return [x.decode() if isinstance(x, bytes) else x for x in data]


def _check_value(value: Any, kind: str, row: int, name: str) -> Any:
    """One request value, held to the rule its column's training data was held to (:mod:`models.values`)."""
    if kind in ("double", "float", "long", "integer", "number"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidInput(f"row {row}, field {name!r}: expected a number, got {value!r}"[:300])
        try:
            return values.number(value)
        except (values.BadValue, OverflowError) as exc:
            raise InvalidInput(f"row {row}, field {name!r}: {exc}"[:300]) from None
    if not isinstance(value, str):
        raise InvalidInput(f"row {row}, field {name!r}: expected a string, got {type(value).__name__}")
    if not value.strip():
        raise InvalidInput(f"row {row}, field {name!r}: is empty")
    if len(value) > 10_000:
        raise InvalidInput(f"row {row}, field {name!r}: longer than 10000 characters")
    if kind == "date":
        try:
            return values.parse_date(value)
        except values.BadValue as exc:
            raise InvalidInput(f"row {row}, field {name!r}: {exc}") from None
    return value
