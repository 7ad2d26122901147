# codequant executor: sandboxed Python, Java, C++ and JavaScript test execution. No torch, no model code.
# Build from the repository root:  docker build -f docker/executor.Dockerfile -t codequant-executor .
FROM python:3.11-slim-bookworm

RUN apt-get update \
 && apt-get install -y --no-install-recommends default-jdk-headless libjavatuples-java g++ nodejs bubblewrap util-linux libseccomp2 \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/codequant
COPY constraints.txt ./
COPY shared/ shared/
COPY services/executor/ services/executor/
RUN pip install --no-cache-dir -c constraints.txt ./shared ./services/executor

# In the hardened compose deployment the container is non-root: bubblewrap then isolates each program in
# user namespaces, which needs docker/executor-seccomp.json (compose.yaml); without working bubblewrap the
# worker refuses to start (docs/executor.md, docs/deployment.md).
RUN useradd --system --uid 10001 --home-dir /home/codequant --create-home codequant
USER codequant
ENV CODEQUANT_CACHE_DIR=/tmp/codequant-cache
ENTRYPOINT ["codequant"]
CMD ["worker", "execute", "--concurrency", "2"]
