#!/usr/bin/env bash
# docker/wheelhouse for image builds on a machine without a container registry: `pip download` on the host of
# every requirement of every CPU image (torch's CPU wheel included, which the host's pip configuration finds),
# so the images install with `pip install --no-index` (docker/base.Dockerfile, PIP_OFFLINE). Skipped when the
# requirements have not changed since the last download (docker/wheelhouse/.requirements-hash).
# Usage: scripts/wheelhouse.sh [PIP]   (default: .venv/bin/pip, else python3.11 -m pip)
set -euo pipefail
cd "$(dirname "$0")/.."

WHEELHOUSE=docker/wheelhouse
pip_cmd=("${1:-.venv/bin/pip}")
[ -x "${pip_cmd[0]}" ] || pip_cmd=(python3.11 -m pip)
# async-timeout: redis requires it on Python < 3.11.3, such as Debian bookworm's 3.11.2 (the offline images'),
# which the host's newer 3.11 does not download by itself.
requirements=(
  setuptools wheel torch==2.13.0 "async-timeout>=4.0.3" -r docker/requirements/base.txt -r docker/requirements/torch.txt
  "./shared[hub]" ./services/executor ./services/generator ./services/orchestrator ./services/reporter
  "./services/serving[formats]" "./services/quantizer[compressors]" ./models/tiny flower
)
hash="$(cat "$0" constraints.txt docker/requirements/*.txt shared/pyproject.toml services/*/pyproject.toml \
  models/tiny/pyproject.toml | sha256sum | cut -c1-16)"
if [ "$(cat "$WHEELHOUSE/.requirements-hash" 2>/dev/null)" = "$hash" ]; then
  echo "wheelhouse: up to date ($(du -sh "$WHEELHOUSE" | cut -f1))"
  exit 0
fi
echo "wheelhouse: pip download of the images' requirements into $WHEELHOUSE"
"${pip_cmd[@]}" download --quiet --disable-pip-version-check -d "$WHEELHOUSE" -c constraints.txt "${requirements[@]}" \
  2> >(grep -v "^WARNING: Location 'file:" >&2)
echo "$hash" >"$WHEELHOUSE/.requirements-hash"
echo "wheelhouse: $(find "$WHEELHOUSE" -name '*.whl' | wc -l) wheels, $(du -sh "$WHEELHOUSE" | cut -f1)"
