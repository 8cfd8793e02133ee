"""Ingest service: the public write plane. Segment-spec HTTP Tracking API (and the paths Segment's
and RudderStack's SDKs use), CORS, write keys, limits and validation; produces every accepted
event to Kafka keyed by user; serves the first-party browser SDK. Stateless."""
