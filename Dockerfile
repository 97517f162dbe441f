# Custom SDK container for running `duplexloom run` on Dataflow (and a reproducible local image).
# Bakes in espeak-ng, libsndfile, the project and its pinned dependencies; the bundled tiny
# aligner model and the embedded speaker library ship as package data.
#
#   docker build -t REGION-docker.pkg.dev/PROJECT/REPO/duplexloom:0.1.0 .
#   docker push   REGION-docker.pkg.dev/PROJECT/REPO/duplexloom:0.1.0
#
# For GPU workers (TTS with a cloning backend, mms_fa aligner) build with a CUDA base image, e.g.
#   docker build --build-arg BASE=nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04 ...
# (the Beam SDK harness is copied in below, so any base with Python 3.11 works).
# For the mms_fa aligner without network on the workers, bake its weights (~1.2 GB) into the image:
#   docker build --build-arg MMS_FA_DIR=/opt/duplexloom/models/mms_fa ...
# (sets DUPLEXLOOM_MMS_FA_DIR, which aligners/mms_fa.py loads from; without it each worker
# downloads them once into $TORCH_HOME on first use). See README "mms_fa weights on Dataflow".
ARG BEAM_VERSION=2.77.0
ARG BASE=python:3.11-slim-bookworm
FROM apache/beam_python3.11_sdk:${BEAM_VERSION} AS beam

FROM ${BASE}
ARG EXTRAS=gcp
ARG MMS_FA_DIR=
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 DEBIAN_FRONTEND=noninteractive
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends espeak-ng libespeak-ng1 libsndfile1 git \
    $(command -v python3.11 >/dev/null || echo python3.11 python3-pip python3.11-venv) \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/duplexloom
COPY pyproject.toml README.md ./
COPY duplexloom duplexloom
COPY schemas schemas
COPY prompts prompts
COPY timeline timeline
COPY tts_adapters tts_adapters
COPY aligners aligners
COPY annotators annotators
COPY pipelines pipelines
COPY trainer trainer
COPY qa qa
RUN python3.11 -m pip install --upgrade pip 'setuptools>=69,<82' wheel Cython numpy \
 && python3.11 -m pip install ".[${EXTRAS}]" "apache-beam[${EXTRAS}]==${BEAM_VERSION}" \
 && python3.11 -c "import duplexloom.pipelines.run, duplexloom.aligners.tiny; from duplexloom.tts_adapters import get_tts; get_tts('espeak')"
ENV DUPLEXLOOM_MMS_FA_DIR=${MMS_FA_DIR}
RUN if [ -n "$MMS_FA_DIR" ]; then mkdir -p "$MMS_FA_DIR" \
 && python3.11 -c "import sys, torch; from torchaudio.pipelines import MMS_FA; torch.hub.download_url_to_file(MMS_FA._path, sys.argv[1] + '/model.pt')" "$MMS_FA_DIR" \
 && python3.11 -c "from duplexloom.aligners import get_aligner; get_aligner('mms_fa')"; fi
# The Beam SDK harness: Dataflow starts the container through /opt/apache/beam/boot.
COPY --from=beam /opt/apache/beam /opt/apache/beam
ENTRYPOINT ["/opt/apache/beam/boot"]
