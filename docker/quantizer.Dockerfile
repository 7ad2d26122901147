# codequant quantizer: AQLM, round-to-nearest, GPTQ/AWQ (llm-compressor), bitsandbytes; GPU (CPU works too). No JDK.
# Build from the repository root:  docker build -f docker/quantizer.Dockerfile -t codequant-quantizer .
# -devel: aqlm compiles its CUDA kernels (used by end-to-end fine-tuning) with nvcc the first time they run.
FROM pytorch/pytorch:2.6.0-cuda12.4-cudnn9-devel

ENV PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1
WORKDIR /opt/codequant
COPY constraints.txt ./
COPY shared/ shared/
COPY services/quantizer/ services/quantizer/
COPY models/tiny/ models/tiny/
# models/tiny builds `builtin: tiny-code` models; no model server here.
RUN grep -v '^torch' constraints.txt > /tmp/constraints.txt \
 && pip install -c /tmp/constraints.txt "./shared[hub]" "./services/quantizer[compressors]" ./models/tiny "aqlm[gpu]" \
 && useradd --system --uid 10001 --create-home codequant
USER codequant
ENV HF_HOME=/models/hf CODEQUANT_CACHE_DIR=/models/cache
ENTRYPOINT ["codequant"]
CMD ["worker", "quantize"]
