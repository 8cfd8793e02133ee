"""Amplitude's HTTP V2, Batch and Identify APIs at /amplitude (analytics-browser,
amplitude-analytics)."""
