# syntax=docker/dockerfile:1
# One image for every WikiPulse service; docker-compose.yml picks the command.
# Dependencies come from the same lock file `make` installs (requirements.lock).

FROM python:3.11.10-slim-bookworm AS build
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

FROM python:3.11.10-slim-bookworm
RUN useradd --system --uid 10001 --create-home --home-dir /app wikipulse \
 && mkdir -p /app/state /app/data && chown wikipulse /app/state
COPY --from=build /opt/venv /opt/venv
COPY tests/data/recentchange-2026-06-20.sse /app/data/
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 STATE_DIR=/app/state
WORKDIR /app
USER wikipulse
CMD ["wikipulse-processor"]
