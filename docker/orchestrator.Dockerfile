# codequant orchestrator: the HTTP API and dashboard, `codequant run --distributed`, and flower. No torch. The
# generator comes along for its generation protocols (codequant.protocols): the API validates studies' endpoints.
# On codequant/base (docker/base.Dockerfile); `make images` builds both. Build arguments: BASE_IMAGE, PIP_OFFLINE.
ARG BASE_IMAGE=codequant/base
FROM ${BASE_IMAGE}

ARG PIP_OFFLINE=""
COPY services/generator/ services/generator/
COPY services/orchestrator/ services/orchestrator/
RUN --mount=type=bind,source=docker/wheelhouse,target=/wheelhouse \
    pip install $PIP_OFFLINE --find-links /wheelhouse -c constraints.txt "./shared[hub]" ./services/generator \
      ./services/orchestrator flower
USER codequant
WORKDIR /data
EXPOSE 8000
ENTRYPOINT ["codequant"]
CMD ["api", "--host", "0.0.0.0", "--port", "8000", "--distributed"]
