"""The Argo fields the local engine implements, and those it accepts as cluster-only no-ops, per object kind."""

# Keys the engine implements, per object kind.  Cluster-only keys are in the *_IGNORED sets.
WORKFLOW_SPEC = {
    "entrypoint",
    "arguments",
    "templates",
    "onExit",
    "parallelism",
    "activeDeadlineSeconds",
    "workflowTemplateRef",
    "hooks",
    "volumes",
    "volumeClaimTemplates",
    "artifactGC",
    "templateDefaults",
}
WORKFLOW_SPEC_IGNORED = {
    "podResources",
    "hostAliases",
    "volumeClaimGC",
    "retryStrategy",
    "shutdown",
    "suspend",
    "archiveLogs",
    "serviceAccountName",
    "artifactRepositoryRef",
    "podGC",
    "ttlStrategy",
    "imagePullSecrets",
    "securityContext",
    "podMetadata",
    "nodeSelector",
    "tolerations",
    "affinity",
    "workflowMetadata",
    "podSpecPatch",
    "metrics",
    "priority",
    "podPriorityClassName",
    "dnsPolicy",
    "dnsConfig",
    "hostNetwork",
    "automountServiceAccountToken",
    "executor",
    "podDisruptionBudget",
    "schedulerName",
}
TEMPLATE = {
    "name",
    "inputs",
    "outputs",
    "container",
    "script",
    "dag",
    "steps",
    "retryStrategy",
    "activeDeadlineSeconds",
    "timeout",
    "parallelism",
    "containerSet",
    "http",
    "suspend",
    "daemon",
    "sidecars",
    "initContainers",
    "volumes",
    "data",
    "plugin",
    "resource",
}
TEMPLATE_IGNORED = {
    "podResources",
    "hostAliases",
    "metadata",
    "nodeSelector",
    "tolerations",
    "affinity",
    "securityContext",
    "serviceAccountName",
    "automountServiceAccountToken",
    "podSpecPatch",
    "priorityClassName",
    "archiveLocation",
    "metrics",
    "schedulerName",
    "executor",
    "failFast",
}
CONTAINER = {
    "image",
    "command",
    "args",
    "env",
    "envFrom",
    "workingDir",
    "volumeMounts",
    "dependencies",
    "mirrorVolumeMounts",
}
CONTAINER_IGNORED = {
    "name",
    "resources",
    "securityContext",
    "imagePullPolicy",
    "ports",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "terminationMessagePath",
    "terminationMessagePolicy",
    "lifecycle",
    "stdin",
    "tty",
    "volumeDevices",
    "resizePolicy",
}
SCRIPT = CONTAINER | {"source"}
DAG = {"tasks", "target", "failFast"}
STEP = {
    "name",
    "template",
    "templateRef",
    "inline",
    "arguments",
    "when",
    "withItems",
    "withParam",
    "withSequence",
    "continueOn",
    "hooks",
    "onExit",
    "description",
}
TASK = STEP | {"dependencies", "depends"}
INPUTS = {"parameters", "artifacts"}
OUTPUTS = {"parameters", "artifacts", "result", "exitCode"}
PARAMETER = {"name", "value", "default", "enum", "description", "valueFrom", "globalName"}
VALUE_FROM = {
    "path",
    "default",
    "parameter",
    "expression",
    "configMapKeyRef",
    "supplied",
    "event",
    "jsonPath",
    "jqFilter",
}
ARTIFACT = {
    "name",
    "path",
    "from",
    "fromExpression",
    "s3",
    "raw",
    "optional",
    "archive",
    "mode",
    "recurseMode",
    "subPath",
    "globalName",
    "artifactGC",
    "deleted",
    "archiveLogs",
    "plugin",
}
S3_ARTIFACT = {"key", "bucket", "endpoint", "insecure", "region", "accessKeySecret", "secretKeySecret", "useSDKCreds"}
RETRY = {"limit", "retryPolicy", "backoff", "affinity", "expression"}
BACKOFF = {"duration", "factor", "maxDuration", "cap"}
ENV = {"name", "value", "valueFrom"}
SEQUENCE = {"count", "start", "end", "format"}
RETRY_POLICIES = {"Always", "OnFailure", "OnError", "OnTransientError"}
WORKFLOW_SPEC |= {"synchronization"}
TEMPLATE |= {"synchronization", "memoize"}
SYNCHRONIZATION = {"mutex", "mutexes", "semaphore", "semaphores"}
MEMOIZE = {"key", "maxAge", "cache"}
