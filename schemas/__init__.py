"""Shared layer: the pydantic models that are the only wire contract between the services
(Segment event envelope, Kafka messages, profile, API bodies)."""
