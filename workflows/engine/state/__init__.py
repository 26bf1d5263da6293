"""What outlives a run's process: run records, node records, locks, the memoization cache, cluster objects."""
