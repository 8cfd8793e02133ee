# Production image for the three Profilestream services (ingest, materializer, query). One image,
# the service is picked by the command: `python -m ingest` (default), `python -m materializer`,
# `python -m query`. Configuration is entirely PS_* environment variables (infra/settings.py).
#
# The `embedded` extra (Tansu, Valkey, chDB) is deliberately NOT installed: in production the
# services talk to Apache Kafka, Redis and ClickHouse over the network (see docker-compose.yml).

FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY . .
# Every dependency ships a manylinux wheel for CPython 3.11, so no compiler is needed.
RUN pip wheel --wheel-dir /wheels .


FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Install only the built wheels (the project and its runtime dependencies, no extras): the source
# tree is not in the runtime image, so nothing shadows the installed packages.
COPY --from=build /wheels /wheels
RUN pip install --no-index --find-links /wheels profilestream \
    && rm -rf /wheels

# Non-root. The working directory is the user's writable home: Faust creates its data directory
# (`<PS_APP_ID>-data`) relative to the current directory, and PS_DATA_DIR points here too.
RUN groupadd --system --gid 10001 profilestream \
    && useradd --system --uid 10001 --gid profilestream --create-home \
        --home-dir /var/lib/profilestream --shell /usr/sbin/nologin profilestream
WORKDIR /var/lib/profilestream
USER profilestream

ENV PS_MODE=production \
    PS_DATA_DIR=/var/lib/profilestream

EXPOSE 8000 8001

CMD ["python", "-m", "ingest"]
