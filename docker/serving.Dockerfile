# codequant serving: the generation worker that serves each variant itself (`codequant serve` on transformers,
# AQLM included, or vLLM on GPU hosts) and samples it; also `codequant serve` alone.
# On codequant/base-torch (docker/base.Dockerfile); `make images` builds both. Build arguments: BASE_IMAGE,
# PIP_OFFLINE, CUDA_EXTRAS and VLLM (GPU-only; "" on CPU hosts).
# GPU hosts: the base is a CUDA -devel image because aqlm compiles its CUDA kernels with nvcc
# (torch.utils.cpp_extension) when first imported; they are compiled here, at build time, for the architectures
# below (no GPU needed), so a server does not compile at its first request.
ARG BASE_IMAGE=codequant/base-torch
FROM ${BASE_IMAGE}

ENV TORCH_CUDA_ARCH_LIST="8.0;8.6;8.9;9.0" TORCH_EXTENSIONS_DIR=/opt/torch-extensions
ARG PIP_OFFLINE=""
ARG CUDA_EXTRAS="aqlm[gpu] ninja"
COPY services/serving/ services/serving/
COPY services/generator/ services/generator/
RUN --mount=type=bind,source=docker/wheelhouse,target=/wheelhouse \
    pip install $PIP_OFFLINE --find-links /wheelhouse -c constraints.txt "./services/serving[formats]" \
      ./services/generator $CUDA_EXTRAS \
 && if [ -n "$CUDA_EXTRAS" ]; then \
      python -c "import aqlm.inference_kernels.cuda_kernel" && chmod -R a+rX /opt/torch-extensions; \
    fi
# vLLM in its own virtualenv (it pins its own torch and CUDA libraries): with a GPU, the generate worker samples
# every variant vLLM can load with it (fp16, GPTQ/AWQ/RTN compressed-tensors, bitsandbytes; `serving.server:
# auto`) and AQLM variants with `codequant serve`. Without it (CPU images) every variant is served by
# `codequant serve`.
ARG VLLM=vllm==0.33.0
RUN if [ -n "$VLLM" ]; then python3.11 -m venv /opt/vllm && /opt/vllm/bin/pip install "$VLLM"; fi
ENV CODEQUANT_VLLM=/opt/vllm/bin/vllm
USER codequant
ENV HF_HOME=/models/hf
EXPOSE 8080
ENTRYPOINT ["codequant"]
CMD ["serve", "--model", "/artifacts/model", "--host", "0.0.0.0", "--port", "8080", "--device", "cuda"]
