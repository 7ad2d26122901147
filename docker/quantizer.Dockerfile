# codequant quantizer: AQLM, round-to-nearest, GPTQ/AWQ (llm-compressor), bitsandbytes; GPU (CPU works too). No JDK.
# On codequant/base-torch (docker/base.Dockerfile): on GPU hosts that base is built on a CUDA -devel image
# (aqlm compiles its CUDA kernels, used by end-to-end fine-tuning, with nvcc the first time they run); on CPU
# hosts on the CPU torch wheel. `make images` builds both. Build arguments: BASE_IMAGE, PIP_OFFLINE, and
# CUDA_EXTRAS (GPU-only requirements; "" on CPU hosts).
ARG BASE_IMAGE=codequant/base-torch
FROM ${BASE_IMAGE}

ARG PIP_OFFLINE=""
ARG CUDA_EXTRAS="aqlm[gpu]"
COPY services/quantizer/ services/quantizer/
COPY models/tiny/ models/tiny/
# models/tiny builds `builtin: tiny-code` models; no model server here.
RUN --mount=type=bind,source=docker/wheelhouse,target=/wheelhouse \
    pip install $PIP_OFFLINE --find-links /wheelhouse -c constraints.txt "./shared[hub]" \
      "./services/quantizer[compressors]" ./models/tiny $CUDA_EXTRAS
USER codequant
ENV HF_HOME=/models/hf CODEQUANT_CACHE_DIR=/models/cache
ENTRYPOINT ["codequant"]
CMD ["worker", "quantize"]
