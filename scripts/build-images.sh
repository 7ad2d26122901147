#!/usr/bin/env bash
# `make images`: codequant's images, on a host with or without a container registry.
#   1. The base images (docker/base.Dockerfile): codequant/base (Python, the virtualenv, codequant-shared) and
#      codequant/base-torch (the same + torch, transformers, accelerate, aqlm).
#   2. The services' images on top of them, built in parallel by `docker compose build` with the compose files
#      this host runs (compose.yaml, + compose.cpu.yaml on a CPU host, + compose.offline.yaml offline).
# On a host that reaches no registry (probed with `docker pull`), it first makes the local Debian base
# (scripts/offline-base.sh) and the wheelhouse (scripts/wheelhouse.sh), and builds Redis and PostgreSQL from
# Debian packages (compose.offline.yaml); pip then installs from the wheelhouse alone.
#
# Environment: CODEQUANT_DEVICE=cpu|cuda (default: cuda where nvidia-smi runs), CODEQUANT_OFFLINE=0|1
# (default: probed). Prints the compose files to use and the images' sizes.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON_IMAGE=python:3.11-slim-bookworm
CUDA_IMAGE=pytorch/pytorch:2.6.0-cuda12.4-cudnn9-devel
DEBIAN_IMAGE=codequant/debian:bookworm
start=$(date +%s)

device="${CODEQUANT_DEVICE:-}"
if [ -z "$device" ]; then
  if command -v nvidia-smi >/dev/null && nvidia-smi >/dev/null 2>&1; then device=cuda; else device=cpu; fi
fi
offline="${CODEQUANT_OFFLINE:-}"
if [ -z "$offline" ]; then
  offline=0
  if ! docker image inspect "$PYTHON_IMAGE" >/dev/null 2>&1 && ! docker pull -q "$PYTHON_IMAGE" >/dev/null 2>&1; then
    offline=1
  fi
fi

names=(compose.yaml)
[ "$device" = cpu ] && names+=(compose.cpu.yaml)
base_args=()
if [ "$offline" = 1 ]; then
  [ "$device" = cpu ] || { echo "images: offline builds are CPU-only (the CUDA base image must be pulled)" >&2; exit 1; }
  echo "images: no container registry here: local Debian base, wheelhouse, Redis and PostgreSQL from Debian"
  bash scripts/offline-base.sh "$DEBIAN_IMAGE"
  bash scripts/wheelhouse.sh
  names+=(compose.offline.yaml)
  PYTHON_IMAGE="$DEBIAN_IMAGE"
  export CODEQUANT_PIP_OFFLINE=--no-index CODEQUANT_DEBIAN_IMAGE="$DEBIAN_IMAGE"
  base_args+=(--build-arg PIP_OFFLINE=--no-index)
fi

mkdir -p build
logged() {  # LOG COMMAND...: the command's output goes to LOG; on failure its end is shown
  local log=$1
  shift
  "$@" >"$log" 2>&1 || { tail -n 40 "$log" >&2; echo "images: failed; the whole log: $log" >&2; exit 1; }
}
build_base() {  # TARGET TAG PYTHON_IMAGE [extra build args...]
  local target=$1 tag=$2 python=$3
  shift 3
  echo "images: $tag (from $python)"
  logged "build/images-$target.log" docker build --progress=plain -f docker/base.Dockerfile --target "$target" \
    -t "$tag" --build-arg PYTHON_IMAGE="$python" "${base_args[@]}" "$@" .
}
files=()
for name in "${names[@]}"; do files+=(-f "$name"); done
# Building needs no password; compose refuses to read compose.yaml without them.
export CODEQUANT_REDIS_PASSWORD="${CODEQUANT_REDIS_PASSWORD:-unused-at-build}"
export CODEQUANT_EXECUTOR_REDIS_PASSWORD="${CODEQUANT_EXECUTOR_REDIS_PASSWORD:-unused-at-build}"
export CODEQUANT_API_TOKEN="${CODEQUANT_API_TOKEN:-unused-at-build}"
mapfile -t services < <(docker compose "${files[@]}" config --services)
torch_free=()
for service in "${services[@]}"; do
  case "$service" in quantizer | serving) ;; *) torch_free+=("$service") ;; esac
done

build_base base codequant/base "$PYTHON_IMAGE"
# codequant/base-torch while the torch-free services build: downloads, unpacking and installs overlap.
torch_args=()
torch_python="$PYTHON_IMAGE"
if [ "$device" = cuda ]; then
  torch_python="$CUDA_IMAGE"
  torch_args=(--build-arg TORCH=)
fi
build_base base-torch codequant/base-torch "$torch_python" "${torch_args[@]}" &
torch_build=$!
trap 'kill "$torch_build" 2>/dev/null || true' EXIT  # a failed build elsewhere stops it too
echo "images: ${torch_free[*]} (docker compose ${files[*]} build)"
logged build/images-services.log docker compose "${files[@]}" --progress plain build "${torch_free[@]}"
wait "$torch_build" || exit 1
echo "images: quantizer serving"
logged build/images-torch-services.log docker compose "${files[@]}" --progress plain build quantizer serving

(IFS=:; echo "${names[*]}") >build/compose-files
echo "images: built in $(($(date +%s) - start)) s; the compose files for this host: COMPOSE_FILE=$(cat build/compose-files)"
docker image ls --format '{{.Repository}}:{{.Tag}}\t{{.Size}}' 'codequant/*'
docker image prune -f >/dev/null  # the layers earlier builds left untagged
