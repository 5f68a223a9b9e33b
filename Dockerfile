# syntax=docker/dockerfile:1
# hubbub image: `docker build -t hubbub .`, or through docker-compose.yml (see README, "Running a cluster").
#
# Two stages: the builder turns the project and its dependencies into wheels (with a compiler at
# hand for any dependency that has no wheel for this platform); the final image installs those
# wheels into a plain slim Python, with no compiler, no pip cache and no source tree, and runs as
# an unprivileged user.
ARG PYTHON_VERSION=3.12

FROM python:${PYTHON_VERSION}-slim AS builder
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY core ./core
COPY cluster ./cluster
COPY broker ./broker
COPY client ./client
COPY emitter ./emitter
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:${PYTHON_VERSION}-slim
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN groupadd --system --gid 10001 hubbub \
 && useradd --system --uid 10001 --gid hubbub --home-dir /app --shell /usr/sbin/nologin hubbub
# The wheels are bind-mounted from the builder for this one step, so they never become a layer.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels hubbub
WORKDIR /app
USER hubbub
EXPOSE 8000
STOPSIGNAL SIGTERM
# Every other setting comes from HUBBUB_* environment variables (docs/configuration.md).
CMD ["hubbub", "run", "--host", "0.0.0.0"]
