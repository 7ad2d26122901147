# codequant base images: Python 3.11, a virtualenv at /opt/venv with codequant-shared and its requirements,
# the non-root user `codequant` (uid 10001) and the folders the compose volumes mount. Two targets:
#   base        codequant/base: the torch-free services (executor, generator, orchestrator, reporter) start here
#   base-torch  codequant/base-torch: base + torch, transformers, accelerate, aqlm (quantizer, serving)
# Build from the repository root (`make images` does all of this):
#   docker build -f docker/base.Dockerfile --target base -t codequant/base .
#   docker build -f docker/base.Dockerfile --target base-torch -t codequant/base-torch .
# Build arguments:
#   PYTHON_IMAGE  where Python comes from: the official python image, a CUDA image with torch (GPU hosts:
#                 pytorch/pytorch:...-devel with TORCH=""), or a bare Debian bookworm (scripts/offline-base.sh),
#                 which gets Debian's Python 3.11
#   TORCH         the torch requirement; "" keeps the torch the base image has
#   TORCH_INDEX   where TORCH comes from (default: the CPU wheels; a looser index pulls the multi-GB CUDA build)
#   PIP_OFFLINE   "--no-index" installs only from docker/wheelhouse (machines without a registry: `make images`
#                 fills it with `pip download` on the host); every install also looks there first
# Needs BuildKit (Docker 23+, or DOCKER_BUILDKIT=1 / buildx): the wheelhouse is bind-mounted, never copied.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS python
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH
RUN command -v python3.11 >/dev/null \
  || { apt-get update && apt-get install -y --no-install-recommends python3.11 python3.11-venv \
       && rm -rf /var/lib/apt/lists/*; } \
 && python3.11 -m venv --system-site-packages /opt/venv \
 && useradd --system --uid 10001 --user-group --home-dir /home/codequant --create-home codequant \
 && mkdir -p /data/runs /models/cache /models/hf \
 && chown -R codequant:codequant /data /models
WORKDIR /opt/codequant
ARG PIP_OFFLINE=""
COPY constraints.txt ./
COPY docker/requirements/ docker/requirements/
RUN --mount=type=bind,source=docker/wheelhouse,target=/wheelhouse \
    pip install $PIP_OFFLINE --find-links /wheelhouse -c constraints.txt -r docker/requirements/base.txt

FROM python AS python-torch
ARG PIP_OFFLINE=""
ARG TORCH=torch==2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
RUN --mount=type=bind,source=docker/wheelhouse,target=/wheelhouse \
    if [ -n "$TORCH" ]; then \
      pip install $PIP_OFFLINE --find-links /wheelhouse --index-url "$TORCH_INDEX" "$TORCH"; \
    fi \
 && pip install $PIP_OFFLINE --find-links /wheelhouse -c constraints.txt -r docker/requirements/torch.txt

FROM python AS base
ARG PIP_OFFLINE=""
COPY shared/ shared/
RUN --mount=type=bind,source=docker/wheelhouse,target=/wheelhouse \
    pip install $PIP_OFFLINE --find-links /wheelhouse -c constraints.txt ./shared
CMD ["codequant", "--help"]

FROM python-torch AS base-torch
ARG PIP_OFFLINE=""
COPY shared/ shared/
RUN --mount=type=bind,source=docker/wheelhouse,target=/wheelhouse \
    pip install $PIP_OFFLINE --find-links /wheelhouse -c constraints.txt ./shared
CMD ["codequant", "--help"]
