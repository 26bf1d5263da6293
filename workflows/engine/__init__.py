"""The local Argo engine: it runs a compiled Workflow object as Argo's controller would, with local processes.

These are the names the rest of ctcd uses; the subpackages are the engine's own.

- :mod:`~workflows.engine.spec`: a Workflow read, checked and prepared (``submit``).
- :mod:`~workflows.engine.kinds`: how each node kind runs (DAG, steps, hooks, retries, suspend, HTTP).
- :mod:`~workflows.engine.pod`: container and script templates as host processes.
- :mod:`~workflows.engine.state`: run records, locks, the cache, cluster objects, signals to a running run.
- :mod:`~workflows.engine.language`: tags, expr-lang and govaluate.
"""

from workflows.engine.executor import Engine
from workflows.engine.kinds.suspend import unsupplied
from workflows.engine.language.errors import ExpressionError
from workflows.engine.language.expressions import evaluate_bool
from workflows.engine.pod.artifacts import collect as collect_artifacts
from workflows.engine.pod.artifacts import garbage as artifact_garbage
from workflows.engine.spec import casing
from workflows.engine.spec.library import TemplateLibrary, load_documents
from workflows.engine.spec.submit import SubmitError, from_file, from_reference, prepare
from workflows.engine.spec.validation import UnsupportedSpec, validate
from workflows.engine.state import names, signals
from workflows.engine.state.objects import LocalObjects
from workflows.engine.state.store import TERMINAL, RunStore

__all__ = [
    "TERMINAL",
    "Engine",
    "ExpressionError",
    "LocalObjects",
    "RunStore",
    "SubmitError",
    "TemplateLibrary",
    "UnsupportedSpec",
    "artifact_garbage",
    "casing",
    "collect_artifacts",
    "evaluate_bool",
    "from_file",
    "from_reference",
    "load_documents",
    "names",
    "prepare",
    "signals",
    "unsupplied",
    "validate",
]
