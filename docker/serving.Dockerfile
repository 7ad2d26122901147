# codequant serve: TGI/OpenAI-compatible server on transformers, for AQLM and every format transformers loads.
# CUDA base; build from the repository root:  docker build -f docker/serving.Dockerfile -t codequant-serving .
# The devel image: aqlm compiles its CUDA kernels with nvcc (torch.utils.cpp_extension) when first imported;
# a runtime image has no nvcc and AQLM layers would fail on the GPU. They are compiled here, at build time,
# for the architectures below (no GPU needed), so a server does not compile at its first request.
FROM pytorch/pytorch:2.6.0-cuda12.4-cudnn9-devel

ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 \
    TORCH_CUDA_ARCH_LIST="8.0;8.6;8.9;9.0" TORCH_EXTENSIONS_DIR=/opt/torch-extensions
WORKDIR /opt/codequant
COPY constraints.txt ./
COPY shared/ shared/
COPY services/serving/ services/serving/
COPY services/generator/ services/generator/
# The image's own CUDA torch is kept (constraints pin everything else); aqlm[gpu] adds the Triton/CUDA kernels.
RUN grep -v '^torch' constraints.txt > /tmp/constraints.txt \
 && pip install -c /tmp/constraints.txt ./shared "./services/serving[formats]" ./services/generator "aqlm[gpu]" ninja \
 && python -c "import aqlm.inference_kernels.cuda_kernel" \
 && chmod -R a+rX /opt/torch-extensions \
 && useradd --system --uid 10001 --create-home codequant
# vLLM in its own virtualenv (it pins its own torch and CUDA libraries): with a GPU, the generate worker samples
# every variant vLLM can load with it (fp16, GPTQ/AWQ/RTN compressed-tensors, bitsandbytes; `serving.server:
# auto`) and AQLM variants with `codequant serve`.
RUN python -m venv /opt/vllm && /opt/vllm/bin/pip install vllm==0.33.0
ENV CODEQUANT_VLLM=/opt/vllm/bin/vllm
USER codequant
ENV HF_HOME=/models/hf
EXPOSE 8080
ENTRYPOINT ["codequant"]
CMD ["serve", "--model", "/artifacts/model", "--host", "0.0.0.0", "--port", "8080", "--device", "cuda"]
