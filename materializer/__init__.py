"""Materializer service: a faust-streaming worker that consumes events in per-user order, appends
them to ClickHouse and upserts profiles in Redis, exactly once per messageId."""
