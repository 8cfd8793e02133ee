"""Ingest service: the public write plane. Segment-spec HTTP Tracking API, write keys, limits and
validation; produces every accepted event to Kafka keyed by user. Stateless."""
