"""The ``train`` WorkflowTemplate: data → train → evaluate, champion re-score, gate, register, canary.

``fingerprint`` keys the run's inputs by content (data ETags, code hash, champion version); ``load-data`` and
``score-champion`` are memoized on those keys, so a re-run on unchanged data and code reuses them.

A "better" decision promotes the new version to staging as a 20% canary (a commit on the GitOps remote).

``argo submit --from workflowtemplate/train -p technique=intent-classifier`` (or ``ctcd submit``).  The
``train-technique`` DAG takes its inputs as parameters, so ``train-all`` can call it per technique.
"""

from hera.workflows import DAG, Parameter, Steps, WorkflowTemplate
from hera.workflows.models import Mutex, Synchronization

from models.contract import discover
from workflows.steps.collect import notify
from workflows.steps.pods import SERVICE_ACCOUNT, artifact_repository, image_parameter, pod_security
from workflows.steps.promote import promote
from workflows.steps.train import decide, evaluate, fingerprint, load_data, register, score_champion, train

TECHNIQUES = sorted(discover())
INPUTS = [
    Parameter(name="technique", enum=TECHNIQUES),
    Parameter(name="data-version", default=""),
    Parameter(name="hyperparameters", default="{}"),
]

with WorkflowTemplate(
    name="train",
    entrypoint="train-technique",
    on_exit="notify-run",
    service_account_name=SERVICE_ACCOUNT,
    security_context=pod_security(),
    artifact_repository_ref=artifact_repository(),
    arguments=[
        image_parameter(),
        Parameter(name="technique", enum=TECHNIQUES),
        Parameter(name="data-version", value=""),
        Parameter(name="hyperparameters", value="{}"),
    ],
) as template:
    with DAG(
        name="train-technique",
        inputs=INPUTS,
        synchronization=Synchronization(mutexes=[Mutex(name="train-{{inputs.parameters.technique}}")]),
    ):
        technique = "{{inputs.parameters.technique}}"
        keys = fingerprint(arguments={"technique": technique, "data_version": "{{inputs.parameters.data-version}}"})
        data = load_data(
            arguments={
                "technique": technique,
                "data_version": "{{inputs.parameters.data-version}}",
                "data_key": keys.get_parameter("data-key"),
                "code_version": keys.get_parameter("code-version"),
            }
        )
        version = data.get_parameter("dataset-version")
        fitted = train(
            arguments={
                "technique": technique,
                "dataset_version": version,
                "hyperparameters": "{{inputs.parameters.hyperparameters}}",
                "workflow_name": "{{workflow.name}}",
            }
        )
        scored = evaluate(
            arguments={
                "technique": technique,
                "dataset_version": version,
                "run_id": fitted.get_parameter("run-id"),
                "model_uri": fitted.get_parameter("model-uri"),
            }
        )
        champion = score_champion(
            name="score-champion",
            arguments={
                "technique": technique,
                "dataset_version": version,
                "champion_version": keys.get_parameter("champion-version"),
                "code_version": keys.get_parameter("code-version"),
            },
        )
        verdict = decide(
            arguments={
                "technique": technique,
                "challenger_metric": scored.get_parameter("metric"),
                "champion_metric": champion.get_parameter("metric"),
            }
        )
        registered = register(
            arguments={
                "technique": technique,
                "run_id": fitted.get_parameter("run-id"),
                "model_uri": fitted.get_parameter("model-uri"),
                "model_sha256": fitted.get_parameter("model-sha256"),
                "dataset_version": version,
                "workflow_name": "{{workflow.name}}",
                "decision": verdict.get_parameter("decision"),
                "champion_version": champion.get_parameter("version"),
            }
        )
        canary = promote(
            name="promote-canary",
            when=f"{registered.get_parameter('decision')} == better",
            arguments={
                "technique": technique,
                "version": registered.get_parameter("version"),
                "environment": "staging",
                "strategy": "canary",
                "canary_percent": "20",
                "metric": scored.get_parameter("metric"),
                "champion_metric": champion.get_parameter("metric"),
            },
        )
        keys >> data >> [fitted, champion]
        fitted >> scored
        [scored, champion] >> verdict
        verdict >> registered
        registered >> canary
    with Steps(name="notify-run"):
        notify(
            arguments={
                "workflow_name": "{{workflow.name}}",
                "status": "{{workflow.status}}",
                "failures": "{{workflow.failures}}",
                "technique": "{{workflow.parameters.technique}}",
            }
        )
