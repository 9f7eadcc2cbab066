# Trainer image: CUDA PyTorch + duet[train] reading shards and pair manifests from buckets.
#   docker build -f docker/trainer.Dockerfile -t REGION-docker.pkg.dev/PROJECT/duet/trainer:0.1.0 .
#   docker run --gpus all IMAGE duet ... --data gs://BUCKET/duet
# Multi-GPU: torchrun --nproc_per_node=8 -m duet.cli ... inside the same image.
FROM pytorch/pytorch:2.7.1-cuda12.6-cudnn9-runtime

RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg gcc g++ \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/duet
COPY pyproject.toml setup.py README.md ./
COPY duet ./duet
COPY schemas ./schemas
COPY pipelines ./pipelines
COPY training ./training
# The image's CUDA torch satisfies duet[train]; pip must not replace it with a CPU wheel.
RUN pip install --no-cache-dir --upgrade-strategy only-if-needed '.[gcp,aws]' fsspec \
    && python -c "import torch; assert torch.version.cuda, 'expected a CUDA build of torch'"

ENV PYTHONUNBUFFERED=1
ENTRYPOINT ["duet"]
