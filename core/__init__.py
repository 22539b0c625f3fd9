"""Cross-cutting plumbing: configuration, database, clock, working-day calendar and logging."""
