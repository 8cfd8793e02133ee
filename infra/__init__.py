"""Shared layer: settings, client factories (Kafka, Redis, ClickHouse), HTTP helpers, the
publisher, topic ids, logging and the ClickHouse schema. Below the services: it imports no
service and no composition code (tests/test_layering.py checks)."""
