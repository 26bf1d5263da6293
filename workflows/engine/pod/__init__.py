"""The pod layer: container, script and containerSet templates as host processes, with their files and images."""
