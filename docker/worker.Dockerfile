# Dataflow worker image for duet's Beam jobs: the matching Beam SDK base, ffmpeg, and duet.
# The same image serves as the Flex Template launcher (docker/flex-template.json).
#   docker build -f docker/worker.Dockerfile -t REGION-docker.pkg.dev/PROJECT/duet/worker:0.1.0 .
#   docker push REGION-docker.pkg.dev/PROJECT/duet/worker:0.1.0
# Then pass --sdk_container_image to any duet Beam command (make dataflow-shards IMAGE=...),
# or build the template: make dataflow-template BUCKET=... IMAGE=...
FROM gcr.io/dataflow-templates-base/python311-template-launcher-base AS launcher

FROM apache/beam_python3.11_sdk:2.77.0

RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/duet
COPY pyproject.toml setup.py README.md ./
COPY duet ./duet
COPY schemas ./schemas
COPY pipelines ./pipelines
COPY training ./training
COPY docker/flex_launcher.py ./docker/flex_launcher.py
# gcc and the Python headers of the base image build lightfm-next's extension.
RUN pip install --no-cache-dir '.[gcp,aws]'

# Flex Template launcher: Dataflow runs FLEX_TEMPLATE_PYTHON_PY_FILE with the template's
# parameters; the workers themselves keep the Beam SDK entrypoint below.
COPY --from=launcher /opt/google/dataflow/python_template_launcher /opt/google/dataflow/python_template_launcher
ENV FLEX_TEMPLATE_PYTHON_PY_FILE=/opt/duet/docker/flex_launcher.py
ENV FLEX_TEMPLATE_PYTHON_SETUP_FILE=""
# Workers size memory by the audio profile: about 0.6 MB per second of the longest track plus
# ~200 MB per worker thread for the shards job (README, "What it costs").
ENTRYPOINT ["/opt/apache/beam/boot"]
