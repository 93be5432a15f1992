"""The hub's domain: aggregates on ``eventsourcing`` and the application that runs commands."""
