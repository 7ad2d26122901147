# codequant generator: samples completions from TGI / vLLM / OpenAI-compatible endpoints. No torch.
# Build from the repository root:  docker build -f docker/generator.Dockerfile -t codequant-generator .
FROM python:3.11-slim-bookworm
WORKDIR /opt/codequant
COPY constraints.txt ./
COPY shared/ shared/
COPY services/generator/ services/generator/
RUN pip install --no-cache-dir -c constraints.txt ./shared ./services/generator \
 && useradd --system --uid 10001 --create-home codequant
USER codequant
ENTRYPOINT ["codequant"]
CMD ["worker", "generate"]
