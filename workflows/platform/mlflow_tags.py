"""The names of ctcd's MLflow tags, on runs, registered models and model versions: written once, here."""

TECHNIQUE = "ctcd.technique"  # a run's, and a registered model's, technique
DATASET_VERSION = "ctcd.dataset_version"  # the dataset version a model trained on
WORKFLOW_RUN = "ctcd.workflow_run"  # the workflow run that trained (or analysed) it
GIT_COMMIT = "ctcd.git_commit"  # the code's commit
TASK_LEADER = "ctcd.task_leader"  # the technique that leads its task
RUN_ID = "ctcd.run_id"  # the training run a version came from
SERIALIZATION = "ctcd.serialization"  # how the model was saved
METRIC = "ctcd.metric"  # the metric the gate compared
PREVIOUS_CHAMPION = "ctcd.previous_champion"  # the version it was compared with
DRIFTED = "ctcd.drifted"  # whether collection saw drift
KIND = "ctcd.kind"  # what kind of run it is (a readout)
NAMESPACE = "ctcd.namespace"  # the environment's namespace a readout read
SERVING = "ctcd.serving"  # a version's marker: where it serves, as git says
PENDING = "ctcd.pending"  # a version's marker: promoted, not yet serving
MODEL_SHA256 = "ctcd.model_sha256"  # the sha256 of a version's model file, which serving checks
GATE = "ctcd.gate."  # the gate's decision on a version: ctcd.gate.decision, .challenger, .champion…
GATE_DECISION = GATE + "decision"
GATE_CHALLENGER = GATE + "challenger"
GATE_CHAMPION = GATE + "champion"
BRIDGE = "ctcd.bridge."  # the registry bridge's own record, per environment: ctcd.bridge.<environment>
