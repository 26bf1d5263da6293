"""Clients of the platform services (S3, MLflow, git) and the embedded platform itself."""
