"""Query service: the private admin plane. Profiles from Redis, event sequences and daily counts
from ClickHouse, behind a bearer admin token."""
