"""The distributed runtime: Kafka topics and the workers around them (issue 3, in progress)."""
