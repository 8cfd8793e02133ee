"""Shared layer: the profile store in Redis. Its key layout (`layout`), the wire format of the
changes the materializer applies (`wire`), the Lua script that applies them (`lua/`), and the one
reader and writer of every key (`read`, `writer`, `identity`, `definitions`). The services call
these functions; none of them names a Redis key itself."""
