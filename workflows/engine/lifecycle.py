"""What a run does before its first node and after its last: metadata, repository, estimates, signals, artifact GC."""

from __future__ import annotations

from typing import TYPE_CHECKING

from workflows.engine.frames import workflow_globals
from workflows.engine.pod import artifacts
from workflows.engine.spec.metadata import apply_workflow_metadata, artifact_repository
from workflows.engine.state import estimate, signals

if TYPE_CHECKING:
    from workflows.engine.context import RunContext


def begin(run: RunContext) -> None:
    """Apply ``workflowMetadata``, resolve the artifact repository, bind the globals, honour shutdown and suspend.

    Raises:
        NodeError: A label expression, the artifact repository or a global cannot be resolved.
    """
    apply_workflow_metadata(run.wf)
    repository = artifact_repository(run.spec, run.engine.artifacts_bucket, run.engine.objects.lookup)
    run.status["artifactRepositoryRef"] = repository
    run.bucket = str(repository["artifactRepository"]["s3"]["bucket"])
    if run.bucket != run.engine.artifacts_bucket:  # the embedded S3 stands in for another store: make its bucket
        try:
            artifacts.ensure_bucket(run.engine.s3(), run.bucket)
        except Exception as exc:  # S3 unreachable: the steps that move artifacts say so, with their retries
            run.log({"id": run.name}, f"cannot make bucket {run.bucket} yet: {exc}")
    run.globals = workflow_globals(run.wf, run.engine.objects.lookup)
    previous = estimate.baseline(run.wf, run.engine.store.list()) if estimate.origin(run.wf) else None
    run.estimates = estimate.durations(previous) if previous else {}
    if "" in run.estimates:
        run.status["estimatedDuration"] = run.estimates[""]
    run.dir.mkdir(parents=True, exist_ok=True)
    if run.spec.get("suspend"):
        signals.suspend_run(run.dir)
    if run.spec.get("shutdown"):
        signals.request(run.dir, str(run.spec["shutdown"]).lower())


def collect_garbage(run: RunContext) -> None:
    """Delete the artifacts whose ``artifactGC`` strategy is ``OnWorkflowCompletion``, as the run ends."""
    found = artifacts.garbage(run.wf, "OnWorkflowCompletion")
    if not found:
        return
    try:
        artifacts.collect(run.engine.s3(), found)
    except Exception as exc:  # botocore's errors: the run keeps its phase, the condition says what failed
        condition = {"type": "ArtifactGCError", "status": "True", "message": f"artifact GC failed: {exc}"}
        run.status["conditions"] = [*run.status.get("conditions", []), condition]
