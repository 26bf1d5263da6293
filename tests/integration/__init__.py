"""Tests of one part at a time against the real embedded platform (SeaweedFS, MLflow, KServe servers, git)."""
