"""Helpers the tests share, imported by name (`from support.stacks import …`)."""
