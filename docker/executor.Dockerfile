# codequant executor: sandboxed Python and Java test execution. No torch, no model code.
# Build from the repository root:  docker build -f docker/executor.Dockerfile -t codequant-executor .
FROM python:3.11-slim-bookworm

RUN apt-get update \
 && apt-get install -y --no-install-recommends default-jdk-headless libjavatuples-java bubblewrap util-linux \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/codequant
COPY constraints.txt ./
COPY shared/ shared/
COPY services/executor/ services/executor/
RUN pip install --no-cache-dir -c constraints.txt ./shared ./services/executor

# Untrusted programs never run as this user's uid when the container runs as root with bubblewrap;
# in the hardened compose deployment the container itself is non-root (see docs/executor.md).
RUN useradd --system --uid 10001 --home-dir /home/codequant --create-home codequant
USER codequant
ENV CODEQUANT_CACHE_DIR=/tmp/codequant-cache
ENTRYPOINT ["codequant"]
CMD ["worker", "execute", "--concurrency", "2"]
