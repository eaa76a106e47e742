# One image for every WikiPulse service; docker-compose.yml picks the command.
# Dependencies come from the same lock file `make` installs (requirements.lock).
#
#   docker build -t wikipulse .                       the services (the default target)
#   docker build --target replay -t wikipulse-replay .   plus devtools/ (replay server, recordings)
#
# PYTHON_IMAGE swaps the base (a mirror, or an offline stand-in: tests/docker/offline).
# No `# syntax=` line: it would make BuildKit pull a frontend image before building.
ARG PYTHON_IMAGE=python:3.11.10-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY requirements.lock ./
RUN pip install -r requirements.lock
COPY pyproject.toml README.md ./
COPY producer ./producer
COPY processor ./processor
COPY wikipulse ./wikipulse
COPY dashboard ./dashboard
RUN pip install --no-deps .

FROM ${PYTHON_IMAGE} AS services
RUN useradd --system --uid 10001 --create-home --home-dir /app wikipulse \
 && mkdir -p /app/state && chown wikipulse /app/state
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 STATE_DIR=/app/state
WORKDIR /app
USER wikipulse
CMD ["wikipulse-processor"]

# The offline replay server of `docker compose --profile replay`: the services image
# plus devtools/ (the server and its recordings; development tools stay out of the
# services image).
FROM services AS replay
COPY devtools /app/devtools
CMD ["python", "-m", "devtools.replay", "--file", "/app/devtools/data/recentchange-2026-06-20.sse", "--host", "0.0.0.0"]

# The default target: what `docker build .` gives.
FROM services
