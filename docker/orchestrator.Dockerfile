# codequant orchestrator: the HTTP API and dashboard, `codequant run --distributed`, and flower. No torch.
# Build from the repository root:  docker build -f docker/orchestrator.Dockerfile -t codequant-orchestrator .
FROM python:3.11-slim-bookworm
WORKDIR /opt/codequant
COPY constraints.txt ./
COPY shared/ shared/
COPY services/orchestrator/ services/orchestrator/
RUN pip install --no-cache-dir -c constraints.txt "./shared[hub]" ./services/orchestrator flower \
 && useradd --system --uid 10001 --create-home codequant
USER codequant
WORKDIR /data
EXPOSE 8000
ENTRYPOINT ["codequant"]
CMD ["api", "--host", "0.0.0.0", "--port", "8000", "--distributed"]
