"""Third-party analytics protocols, each under its own prefix of the ingest service: PostHog
(/posthog), Mixpanel (/mixpanel), Amplitude (/amplitude) and forwarded Segment and RudderStack
webhooks (/webhooks). Each provider has a pure `mapping` (its payload -> Segment-spec events with
profile operations, tested without servers) and `routes` that only read, authenticate, publish
through ingest.accept and answer in the provider's own reply shapes."""
