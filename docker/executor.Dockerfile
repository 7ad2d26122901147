# codequant executor: sandboxed Python, Java, C++ and JavaScript test execution. No torch, no model code.
# On codequant/base (docker/base.Dockerfile); `make images` builds both. Build arguments: BASE_IMAGE, PIP_OFFLINE
# (docker/base.Dockerfile explains them).
ARG BASE_IMAGE=codequant/base
FROM ${BASE_IMAGE}

RUN apt-get update \
 && apt-get install -y --no-install-recommends default-jdk-headless libjavatuples-java g++ nodejs bubblewrap \
      util-linux libseccomp2 \
 && rm -rf /var/lib/apt/lists/*
ARG PIP_OFFLINE=""
COPY services/executor/ services/executor/
RUN --mount=type=bind,source=docker/wheelhouse,target=/wheelhouse \
    pip install $PIP_OFFLINE --find-links /wheelhouse -c constraints.txt ./services/executor

# In the hardened compose deployment the container is non-root: bubblewrap then isolates each program in
# user namespaces, which needs the security options in compose.yaml; without working bubblewrap the
# worker refuses to start (docs/executor.md, docs/deployment.md).
USER codequant
ENV CODEQUANT_CACHE_DIR=/tmp/codequant-cache
ENTRYPOINT ["codequant"]
CMD ["worker", "execute", "--concurrency", "2"]
