"""The node kinds: how each template body runs (DAG, steps, hooks, retries, suspend, HTTP) and how runs end."""
