"""Shared layer: the profile store in Redis. Its key layout (`layout`), the wire format of the
changes the materializer applies (`wire`), the Lua script that applies them (`lua/`), and the one
reader and writer of every profile key (`read`, `writer`, `identity`, `definitions`, `marks`).
The services call these functions and name no profile key themselves; the one exception is the
materializer's own per-topic offset marks, which its Redis sink writes with the key names and
encodings declared in `layout`."""
