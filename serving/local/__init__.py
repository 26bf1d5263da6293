"""Local serving: the embedded stand-in for Argo CD + KServe (reconciler, traffic-splitting gateway, status)."""
