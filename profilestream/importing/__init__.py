"""`profilestream import`: events and users from files (Segment-spec JSON/NDJSON, Mixpanel and
Amplitude exports, a CSV of users) through the same validation and Kafka path as live events.

records    streaming readers: a file's records, one at a time, with where each one is
formats    which format a file holds, from its first bytes
convert    pure: one record -> its normalized events (with a stable messageId) or why not
tally      pure: what a run accepted, refused (by reason, with where) and skipped
checkpoint how far an interrupted import of a file got
progress   the progress bar (a terminal) or plain periodic lines (CI, pipes)
run        the loop that only moves data: read, convert, publish in batches, checkpoint
"""
