"""Mixpanel's ingestion API at /mixpanel (mixpanel-browser, mixpanel-python)."""
