# codequant generator: samples completions from TGI / vLLM / OpenAI-compatible endpoints. No torch.
# On codequant/base (docker/base.Dockerfile); `make images` builds both. Build arguments: BASE_IMAGE, PIP_OFFLINE.
ARG BASE_IMAGE=codequant/base
FROM ${BASE_IMAGE}

ARG PIP_OFFLINE=""
COPY services/generator/ services/generator/
RUN --mount=type=bind,source=docker/wheelhouse,target=/wheelhouse \
    pip install $PIP_OFFLINE --find-links /wheelhouse -c constraints.txt ./services/generator
USER codequant
ENTRYPOINT ["codequant"]
CMD ["worker", "generate-remote"]
