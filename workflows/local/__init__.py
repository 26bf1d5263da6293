"""The embedded platform on one machine: its services, their supervisor, the run worker and the bridge server."""
