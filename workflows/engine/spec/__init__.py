"""The spec: a Workflow read, checked field by field against what the engine runs, and prepared for a run."""
