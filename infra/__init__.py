"""Shared layer: settings, client factories, HTTP helpers, the embedded services (Tansu, Valkey,
chDB) and the `make up` command line."""
