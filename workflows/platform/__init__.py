"""Clients of the platform services: S3, the MLflow registry, git and the Argo server."""
