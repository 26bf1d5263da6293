"""Every Argo field, per object kind, is one of three: implemented, cluster-only, or refused.

- Implemented: the sets named after the kind (``WORKFLOW_SPEC``, ``TEMPLATE``…).
- Cluster-only (the ``CLUSTER_ONLY_*`` sets): they place, secure, size or clean up a pod on a cluster's nodes,
  or feed the controller's Prometheus; a host process has nothing of the kind.  They are accepted, and each run
  names them in a ``SpecWarnings`` condition.
- Refused: every other key, at submit, naming its path; ``REFUSED`` gives the reason where there is one.
"""

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
    "retryStrategy",
    "shutdown",
    "suspend",
    "archiveLogs",
    "artifactRepositoryRef",
    "ttlStrategy",
    "workflowMetadata",
}
CLUSTER_ONLY_WORKFLOW_SPEC = {
    "podResources",
    "hostAliases",
    "volumeClaimGC",
    "serviceAccountName",
    "podGC",
    "imagePullSecrets",
    "securityContext",
    "podMetadata",
    "nodeSelector",
    "tolerations",
    "affinity",
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
    "failFast",
    "archiveLocation",
    "data",
}
CLUSTER_ONLY_TEMPLATE = {
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
    "metrics",
    "schedulerName",
    "executor",
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
    "name",
    "readinessProbe",
}
CLUSTER_ONLY_CONTAINER = {
    "resources",
    "securityContext",
    "imagePullPolicy",
    "ports",
    "livenessProbe",
    "startupProbe",
    "terminationMessagePath",
    "terminationMessagePolicy",
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
    "http",
}
S3_ARTIFACT = {"key", "bucket", "createBucketIfNotPresent"}
CLUSTER_ONLY_ARTIFACT = {"plugin"}  # an artifact driver plugin's store: locally the embedded S3 keeps the artifact
CLUSTER_ONLY_S3 = {  # how a cluster reaches its S3; locally the embedded S3 stands in for every endpoint
    "endpoint",
    "insecure",
    "region",
    "accessKeySecret",
    "secretKeySecret",
    "sessionTokenSecret",
    "useSDKCreds",
    "caSecret",
    "roleARN",
}
CREATE_BUCKET = set[str]()  # objectLocking is refused: the embedded S3's buckets have no object lock
ARTIFACT_GC = {"strategy"}
CLUSTER_ONLY_ARTIFACT_GC = {"podMetadata", "serviceAccountName", "podSpecPatch", "forceFinalizerRemoval"}
GC_STRATEGIES = {"", "OnWorkflowCompletion", "OnWorkflowDeletion", "Never"}
TAR = {"compressionLevel"}
RETRY = {"limit", "retryPolicy", "backoff", "expression"}
CLUSTER_ONLY_RETRY = {"affinity"}  # a retry on another node of the cluster
BACKOFF = {"duration", "factor", "maxDuration", "cap"}
ENV = {"name", "value", "valueFrom"}
SEQUENCE = {"count", "start", "end", "format"}
RETRY_POLICIES = {"Always", "OnFailure", "OnError", "OnTransientError"}
WORKFLOW_SPEC |= {"synchronization"}
TEMPLATE |= {"synchronization", "memoize"}
SYNCHRONIZATION = {"mutex", "mutexes", "semaphore", "semaphores"}
MEMOIZE = {"key", "maxAge", "cache"}
CONTAINER_SET = {"containers", "volumeMounts", "retryStrategy"}
CONTAINER_SET_RETRY = {"retries", "duration"}
WORKFLOW_METADATA = {"labels", "annotations", "labelsFrom"}
TTL_STRATEGY = {"secondsAfterCompletion", "secondsAfterSuccess", "secondsAfterFailure"}
ARCHIVE_LOCATION = {"archiveLogs"}
ARTIFACT_REPOSITORY_REF = {"configMap", "key"}
SHUTDOWN = {"Terminate", "Stop"}

_TERMINAL = "a local step has no terminal attached"
REFUSED = {  # why a field is refused, where a reason helps more than "not supported"
    "tty": f"{_TERMINAL}; remove tty",
    "stdin": f"{_TERMINAL} nor standard input; remove stdin",
    "stdinOnce": f"{_TERMINAL} nor standard input; remove stdinOnce",
    "lifecycle": "postStart/preStop handlers are run by the kubelet, which a local step does not have",
    "restartPolicy": "a local step is never restarted in place; use retryStrategy",
    "encryptionOptions": "the embedded S3 does not encrypt objects; remove encryptionOptions",
    "objectLocking": "the embedded S3's buckets have no object lock; remove objectLocking",
    "resource": "resource templates create Kubernetes objects, which need a cluster",
    "plugin": "executor plugins run as cluster sidecars; not available locally",
    "event": "values from a WorkflowEventBinding's event need Argo Server",
    "jsonPath": "jsonPath reads a resource template's Kubernetes object, which needs a cluster",
    "jqFilter": "jqFilter reads a resource template's Kubernetes object, which needs a cluster",
    "auth": "basic, client-certificate and OAuth2 auth are not supported locally; send the credentials in headers",
}
HTTP = {"url", "method", "headers", "body", "bodyFrom", "successCondition", "timeoutSeconds", "insecureSkipVerify"}
HTTP_HEADER = {"name", "value", "valueFrom"}
HTTP_HEADER_SOURCE = {"secretKeyRef"}
HTTP_BODY_SOURCE = {"bytes"}
SUSPEND = {"duration"}
CONTINUE_ON = {"error", "failed"}
WORKFLOW_TEMPLATE_REF = {"name", "clusterScope"}
TEMPLATE_REF = {"name", "template", "clusterScope"}
HOOK = {"template", "templateRef", "arguments", "expression"}
CACHE = {"configMap"}
MUTEX = {"name", "namespace"}
SEMAPHORE = {"configMapKeyRef", "namespace"}
CLUSTER_ONLY_LOCK = {"database"}  # locks shared between a cluster's controllers through a database
HTTP_ARTIFACT = {"url", "headers"}
HTTP_ARTIFACT_HEADER = {"name", "value"}
DATA = {"source", "transformation"}
DATA_SOURCE = {"artifactPaths"}
ARTIFACT_PATHS = {"name", "s3"}
TRANSFORMATION = {"expression"}
