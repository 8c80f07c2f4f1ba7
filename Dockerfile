# syntax=docker/dockerfile:1
# Images for compose.yaml (docs/docker.md):
#   target kafka     apache/kafka with the Prometheus JMX exporter agent, resolved from
#                    Maven Central through the same pinned infra/pom.xml as the local stack
#   target pipeline  the pipeline's services (feed, ingest, scorekeeper, edges, control,
#                    corrections): `python -m pipeline.SERVICE --config FILE`

FROM maven:3.9-eclipse-temurin-21 AS jmx-agent
COPY infra/pom.xml /build/pom.xml
RUN mvn -B -q -f /build/pom.xml dependency:copy-dependencies \
        -DincludeArtifactIds=jmx_prometheus_javaagent -DexcludeTransitive=true \
        -DoutputDirectory=/agent \
    && mv /agent/jmx_prometheus_javaagent-*.jar /agent/jmx_prometheus_javaagent.jar

FROM apache/kafka:4.1.1 AS kafka
COPY --from=jmx-agent /agent/jmx_prometheus_javaagent.jar /opt/jmx/jmx_prometheus_javaagent.jar

FROM python:3.11-slim-bookworm AS pipeline
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
# Dependencies first (pinned by infra/constraints.txt), so code changes rebuild one layer.
COPY pyproject.toml README.md ./
COPY infra/constraints.txt infra/constraints.txt
RUN mkdir pipeline && touch pipeline/__init__.py \
    && pip install --constraint infra/constraints.txt . \
    && pip uninstall --yes gameday && rm -rf pipeline build ./*.egg-info
COPY pipeline pipeline
# The run directory's owner replaces this user at `gameday up` (compose.yaml `user:`).
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin gameday
USER 10001
CMD ["python", "-m", "pipeline.feed", "--help"]
