# Dataflow worker image for duet's Beam jobs: the matching Beam SDK base, ffmpeg, and duet.
# Build and push, then pass --sdk_container_image to any duet Beam command:
#   docker build -f docker/worker.Dockerfile -t REGION-docker.pkg.dev/PROJECT/duet/worker:0.1.0 .
#   docker push REGION-docker.pkg.dev/PROJECT/duet/worker:0.1.0
FROM apache/beam_python3.11_sdk:2.77.0

RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/duet
COPY pyproject.toml README.md ./
COPY duet ./duet
COPY schemas ./schemas
COPY pipelines ./pipelines
COPY training ./training
RUN pip install --no-cache-dir '.[gcp,aws]'

# The Beam SDK base image's entrypoint starts the worker harness; keep it.
