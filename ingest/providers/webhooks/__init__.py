"""Forwarded streams at /webhooks: Segment's Webhooks destination (signed) and RudderStack's
webhook destination, both Segment-spec events already."""
