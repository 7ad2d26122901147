# codequant reporter: statistics, tables and plots from the results store. No torch.
# On codequant/base (docker/base.Dockerfile); `make images` builds both. Build arguments: BASE_IMAGE, PIP_OFFLINE.
ARG BASE_IMAGE=codequant/base
FROM ${BASE_IMAGE}

ARG PIP_OFFLINE=""
COPY services/reporter/ services/reporter/
RUN --mount=type=bind,source=docker/wheelhouse,target=/wheelhouse \
    pip install $PIP_OFFLINE --find-links /wheelhouse -c constraints.txt ./services/reporter
USER codequant
ENV MPLCONFIGDIR=/tmp/matplotlib
ENTRYPOINT ["codequant"]
CMD ["worker", "report"]
