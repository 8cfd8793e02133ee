"""PostHog's capture protocol at /posthog (posthog-js, posthog-python, posthog-node)."""
