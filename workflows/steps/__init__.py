"""Step code: the runner-script functions that run inside each workflow pod (or local engine process)."""
