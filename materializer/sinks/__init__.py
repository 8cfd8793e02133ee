"""The materializer's writers: Redis profiles and ClickHouse events."""
