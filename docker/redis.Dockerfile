# Redis from Debian's own redis-server package, for hosts that cannot pull redis:7.4-alpine
# (compose.offline.yaml). Runs as the redis user with its data in /data, as the official image does.
ARG DEBIAN_IMAGE=debian:bookworm-slim
FROM ${DEBIAN_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends redis-server \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /data && chown redis:redis /data
WORKDIR /data
USER redis
EXPOSE 6379
CMD ["redis-server"]
