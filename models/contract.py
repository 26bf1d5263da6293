"""The technique contract: what every model folder under ``models/`` declares, and how ctcd finds it.

A technique is one sub-package with a ``technique.yaml`` (validated by :class:`TechniqueSpec`) and two
modules: ``train.py`` with ``fit(frame, hyperparameters, seed) -> FitResult`` and ``generate.py`` with
``generate(rows, seed, batch) -> DataFrame``.  Adding a technique means adding one folder: workflows,
serving and gitops discover techniques through :func:`discover`.  Several techniques may solve one ``task``
(``intents``): they train on its one dataset and frozen test split, and serve the same signature, so that they
can be compared, and served side by side.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MODELS_DIR = Path(__file__).resolve().parent
DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
ColumnType = Literal["string", "integer", "number", "date"]
METRICS = {
    "accuracy": "maximize",
    "answered_accuracy": "maximize",
    "coverage": "maximize",
    "oos_recall": "maximize",
    "f1_macro": "maximize",
    "roc_auc": "maximize",
    "average_precision": "maximize",
    "log_loss": "minimize",
    "brier": "minimize",
}


HANDOFF_METRICS = ("answered_accuracy", "coverage", "oos_recall")


class UnknownTechnique(KeyError):
    """No technique has that name; the message lists the known ones."""

    def __str__(self) -> str:
        """The message without KeyError's quotes."""
        return str(self.args[0])


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatasetSpec(_Strict):
    """The columns a technique's dataset must have, with their types."""

    columns: dict[str, ColumnType]
    optional: list[str] = Field(default_factory=list)
    min_rows_per_class: int = Field(default=2, ge=1)


class DriftSpec(_Strict):
    """Thresholds beyond which a new batch counts as drifted (and retraining starts)."""

    psi: float = Field(default=0.2, gt=0)
    ks: float = Field(default=0.2, gt=0, le=1)
    text_length_ks: float = Field(default=0.2, gt=0, le=1)
    text_oov: float = Field(default=0.15, gt=0, le=1)
    label_psi: float = Field(default=0.2, gt=0)


class MetricSpec(_Strict):
    """The primary metric and whether higher or lower is better."""

    name: str
    direction: Literal["maximize", "minimize"]

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in METRICS:
            raise ValueError(f"unknown metric {value!r} (known: {', '.join(METRICS)})")
        return value


class HandoffSpec(_Strict):
    """When the model hands a question to a person: below a confidence threshold chosen on validation data.

    Exactly one target: ``target_accuracy`` (the threshold is the lowest whose answered questions reach this
    accuracy) or ``target_coverage`` (the share of questions answered).  Rows labelled ``out_of_scope_label``
    are learned as a class of their own, and a prediction of it is a hand-off whatever its confidence; the
    targets count in-scope rows only, and evaluation reports how many out-of-scope rows were handed off.
    """

    target_accuracy: float | None = Field(default=None, gt=0, le=1)
    target_coverage: float | None = Field(default=None, gt=0, le=1)
    out_of_scope_label: str | None = None

    @model_validator(mode="after")
    def _one_target(self) -> HandoffSpec:
        if (self.target_accuracy is None) == (self.target_coverage is None):
            raise ValueError("give exactly one of target_accuracy or target_coverage")
        return self


class FieldSpec(_Strict):
    """One field of the serving signature."""

    name: str
    type: ColumnType | Literal["double"]


class ServingSpec(_Strict):
    """What the predictor takes and returns, and how KServe deploys it.

    ``sensitive`` inputs are kept in the prediction log only as keyed hashes.  ``mode`` is ``serverless``
    (Knative revisions, a canary by ``canaryTrafficPercent``) or ``standard`` (RawDeployment, a canary as its own
    predictor in ``spec.canary``).
    """

    inputs: list[FieldSpec]
    outputs: list[FieldSpec]
    sensitive: list[str] = Field(default_factory=list)
    mode: Literal["serverless", "standard"] = "serverless"

    @model_validator(mode="after")
    def _sensitive_are_inputs(self) -> ServingSpec:
        unknown = sorted(set(self.sensitive) - {f.name for f in self.inputs})
        if unknown:
            raise ValueError(f"serving.sensitive names {', '.join(unknown)}, which are not serving inputs")
        return self


class TechniqueSpec(_Strict):
    """The contents of a ``technique.yaml``."""

    name: str
    description: str
    problem: Literal["multiclass", "binary"]
    task: str = ""
    dataset: DatasetSpec
    target: str
    metric: MetricSpec
    min_improvement: float = Field(ge=0)
    serving: ServingSpec
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    sample_rows: int = Field(default=1000, ge=10)
    drift: DriftSpec = Field(default_factory=DriftSpec)
    handoff: HandoffSpec | None = None
    requirements: list[str] = Field(default_factory=list)

    @field_validator("name", "task")
    @classmethod
    def _dns(cls, value: str) -> str:
        if value and not DNS1123.match(value):
            raise ValueError(f"{value!r} must be a DNS-1123 label (lowercase letters, digits, '-')")
        return value

    @model_validator(mode="after")
    def _handoff_metric(self) -> TechniqueSpec:
        if self.metric.name in HANDOFF_METRICS and self.handoff is None:
            raise ValueError(f"metric {self.metric.name!r} needs a handoff section (the threshold it is measured at)")
        if self.metric.name == "oos_recall" and not (self.handoff and self.handoff.out_of_scope_label):
            raise ValueError("metric 'oos_recall' needs handoff.out_of_scope_label")
        return self

    @property
    def dataset_name(self) -> str:
        """The task whose dataset (and frozen test split) this technique trains on: ``task``, else its own name."""
        return self.task or self.name

    def check_hyperparameters(self, overrides: Any) -> dict[str, Any]:
        """Overrides of the declared hyper-parameters, each of its default's kind (a grid may be one value or a list).

        Raises:
            ValueError: Not an object, an undeclared name, or a value of another kind; the message names it.
        """
        if not isinstance(overrides, dict):
            raise ValueError(f"hyper-parameters must be a JSON object, not {type(overrides).__name__}")
        for name, value in overrides.items():
            if name not in self.hyperparameters:
                known = ", ".join(sorted(self.hyperparameters)) or "none"
                raise ValueError(f"{self.name} has no hyper-parameter {name!r} (declared: {known})")
            default = self.hyperparameters[name]
            grid = default if isinstance(default, list) else [default]
            given = value if isinstance(value, list) and isinstance(default, list) else [value]
            if not given or not all(_same_kind(v, grid[0]) for v in given):
                raise ValueError(
                    f"hyper-parameter {name!r}: {value!r} is not of the declared kind (default {default!r})"
                )
        return dict(overrides)

    def feature_columns(self) -> list[str]:
        """Every dataset column but the target, in declared order."""
        return [c for c in self.dataset.columns if c != self.target]

    def out_of_scope_label(self) -> str | None:
        """The label of out-of-scope rows, when the hand-off declares one."""
        return self.handoff.out_of_scope_label if self.handoff else None


def _same_kind(value: Any, default: Any) -> bool:
    """Whether a hyper-parameter value is of its default's kind (an integer counts as a float, never a bool)."""
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    return isinstance(value, type(default))


@dataclass
class FitResult:
    """What a technique's ``fit`` returns.

    Attributes:
        model: A fitted scikit-learn estimator (a Pipeline from raw columns to predictions).
        params: The hyper-parameters chosen (logged to MLflow).
        cv_scores: Cross-validated scores on the training data (logged to MLflow).
        validation: Labels and class probabilities (columns in ``model.classes_`` order) of rows the model
            chosen was not fit on (out-of-fold predictions); the hand-off threshold is chosen on them.
    """

    model: Any
    params: dict[str, Any] = field(default_factory=dict)
    cv_scores: dict[str, float] = field(default_factory=dict)
    validation: tuple[Any, Any] | None = None


@dataclass(frozen=True)
class Technique:
    """A discovered technique: its spec and its package."""

    spec: TechniqueSpec
    package: str

    @property
    def name(self) -> str:
        """The technique's DNS-1123 name."""
        return self.spec.name

    @property
    def dataset(self) -> str:
        """The S3 prefix of its dataset: its task's, shared by every technique of that task."""
        return self.spec.dataset_name

    def fit(self, frame: Any, hyperparameters: dict[str, Any], seed: int = 0) -> FitResult:
        """Train on a validated frame."""
        module = importlib.import_module(f"{self.package}.train")
        return module.fit(frame, {**self.spec.hyperparameters, **hyperparameters}, seed)  # type: ignore[no-any-return]

    def generate(self, rows: int, seed: int = 0, batch: int = 0) -> Any:
        """Synthetic sample data; ``batch`` selects a later month with its own variation."""
        module = importlib.import_module(f"{self.package}.generate")
        return module.generate(rows, seed, batch)


def load_spec(path: Path) -> TechniqueSpec:
    """Read and validate one ``technique.yaml``.

    Raises:
        ValueError: The file is not valid; the message names the file.
    """
    from pydantic import ValidationError

    try:
        return TechniqueSpec.model_validate(yaml.safe_load(path.read_text()))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'file'}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"{path}: {problems}") from exc
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML ({exc})") from exc


@lru_cache(maxsize=1)
def discover() -> dict[str, Technique]:
    """Every technique folder under ``models/``, by name."""
    found: dict[str, Technique] = {}
    for path in sorted(MODELS_DIR.glob("*/technique.yaml")):
        spec = load_spec(path)
        if spec.name in found:
            raise ValueError(f"{path}: technique name {spec.name!r} is used twice")
        found[spec.name] = Technique(spec=spec, package=f"models.{path.parent.name}")
    _check_tasks(found)
    return found


SHARED = ("problem", "dataset", "target", "serving")


def _check_tasks(techniques: dict[str, Technique]) -> None:
    """Techniques of one task share its dataset, frozen split and serving signature, so these must agree.

    Raises:
        ValueError: Two techniques of one task differ in one of them; the message names both and the field.
    """
    first: dict[str, TechniqueSpec] = {}
    for technique in techniques.values():
        spec = technique.spec
        other = first.setdefault(spec.dataset_name, spec)
        for name in SHARED:
            if getattr(spec, name) != getattr(other, name):
                raise ValueError(
                    f"techniques {other.name!r} and {spec.name!r} solve task {spec.dataset_name!r} but declare "
                    f"different {name!r}; techniques of one task share its dataset and serving signature"
                )
    for technique in techniques.values():
        spec = technique.spec
        if spec.task and spec.task != spec.name and spec.task in techniques:
            raise ValueError(
                f"technique {spec.name!r} declares task {spec.task!r}, which is another technique's name; the task's "
                "InferenceGraph and that technique's InferenceService would share one host. Rename the task"
            )


def by_task() -> dict[str, list[str]]:
    """Technique names by the task (dataset) they share, each list sorted; a technique without a task is its own."""
    tasks: dict[str, list[str]] = {}
    for name in sorted(discover()):
        tasks.setdefault(discover()[name].dataset, []).append(name)
    return tasks


def get(name: str) -> Technique:
    """The technique with this name.

    Raises:
        UnknownTechnique: With the names that exist.
    """
    techniques = discover()
    if name not in techniques:
        raise UnknownTechnique(f"unknown technique {name!r} (known: {', '.join(sorted(techniques)) or 'none'})")
    return techniques[name]
