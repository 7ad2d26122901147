# codequant reporter: statistics, tables and plots from the results store. No torch.
# Build from the repository root:  docker build -f docker/reporter.Dockerfile -t codequant-reporter .
FROM python:3.11-slim-bookworm
WORKDIR /opt/codequant
COPY constraints.txt ./
COPY shared/ shared/
COPY services/reporter/ services/reporter/
RUN pip install --no-cache-dir -c constraints.txt ./shared ./services/reporter \
 && useradd --system --uid 10001 --create-home codequant
USER codequant
ENV MPLCONFIGDIR=/tmp/matplotlib
ENTRYPOINT ["codequant"]
CMD ["worker", "report"]
