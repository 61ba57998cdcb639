# The other services of deploy/compose.yaml, built on the same BASE_IMAGE
# as iiifd (so that the stack builds where no registry is reachable):
#   --target versitygw   the S3-compatible store, from the Go module proxy
#   --target redis       Debian's redis-server
#   --target varnish     Debian's Varnish with varnish-modules (xkey)
# Where a registry is reachable, official images of Redis and Varnish (with
# varnish-modules) serve as well.
ARG BASE_IMAGE=debian:bookworm-slim

FROM ${BASE_IMAGE} AS versitygw-build
ARG GOPROXY
ARG EXTRA_CA_CERTS
ENV GOPROXY=${GOPROXY}
RUN if [ -n "$EXTRA_CA_CERTS" ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ca-certificates \
		&& printf '%s\n' "$EXTRA_CA_CERTS" > /usr/local/share/ca-certificates/build-extra.crt \
		&& update-ca-certificates; fi
WORKDIR /src
COPY go.mod go.sum ./
COPY scripts/deps.sh scripts/deps.sh
# Go as scripts/deps.sh gets it; versitygw at the version deps.sh pins.
RUN apt-get update -qq && bash -c '. scripts/deps.sh && ensure_versitygw && cp "$(go env GOPATH)/bin/versitygw" /versitygw'

FROM ${BASE_IMAGE} AS versitygw
COPY --from=versitygw-build /versitygw /usr/local/bin/versitygw
RUN useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin store \
	&& mkdir -p /srv/store && chown 10001:10001 /srv/store
USER 10001:10001
EXPOSE 7070
ENTRYPOINT ["versitygw"]

FROM ${BASE_IMAGE} AS redis
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server \
	&& rm -rf /var/lib/apt/lists/*
USER redis
EXPOSE 6379
ENTRYPOINT ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--save", "", "--appendonly", "no", "--maxmemory", "256mb", "--maxmemory-policy", "allkeys-lru"]

FROM ${BASE_IMAGE} AS varnish
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends varnish varnish-modules \
	&& rm -rf /var/lib/apt/lists/*
COPY deploy/varnish/iiifd.vcl deploy/varnish/backends.vcl /etc/varnish/
EXPOSE 80
ENTRYPOINT ["varnishd", "-F", "-a", ":80", "-f", "/etc/varnish/iiifd.vcl", "-p", "vcl_path=/etc/varnish", "-s", "malloc,256m"]
