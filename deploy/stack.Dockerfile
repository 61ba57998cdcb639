# The other services of deploy/compose.yaml, built on the same BASE_IMAGE
# as iiifd (so that the stack builds where no registry is reachable):
#   --target versitygw   the S3-compatible store, from the Go module proxy
#   --target redis       Debian's redis-server
#   --target varnish     Debian's Varnish with varnish-modules (xkey)
# Where a registry is reachable, official images of Redis and Varnish (with
# varnish-modules) serve as well. Like the Dockerfile, it needs BuildKit
# (DOCKER_BUILDKIT=1 with Debian's docker.io 20.10).
ARG BASE_IMAGE=debian:bookworm-slim
# VERSITYGW_FROM names the stage the versitygw binary comes from:
# versitygw-build (the default) compiles it from the Go module proxy;
# versitygw-context takes a binary named versitygw at the root of the
# build context instead. scripts/test-container uses the latter with the
# one scripts/deps.sh already built on the (Debian bookworm) host for the
# S3 tests, the same pinned version, rather than compile it a second time.
ARG VERSITYGW_FROM=versitygw-build

# These first steps are the Dockerfile's build stage's, word for word, so
# that BuildKit finds them in its cache after building iiifd (Go and the
# C build dependencies installed once for both); keep them alike. Go's
# build cache is the same cache mount too, so the standard library is
# compiled once (the same flags: cgo, -trimpath).
FROM ${BASE_IMAGE} AS versitygw-build
ARG GOPROXY
ENV GOPROXY=${GOPROXY} GOFLAGS=-buildvcs=false
ARG EXTRA_CA_CERTS
WORKDIR /src
COPY go.mod go.sum ./
COPY scripts/deps.sh scripts/deps.sh
RUN apt-get update -qq \
	&& if [ -n "$EXTRA_CA_CERTS" ]; then \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ca-certificates \
		&& printf '%s\n' "$EXTRA_CA_CERTS" > /usr/local/share/ca-certificates/build-extra.crt \
		&& update-ca-certificates; fi \
	&& bash -c '. scripts/deps.sh && go version' \
	&& rm -rf /var/lib/apt/lists/*
ENV PATH=/root/.cache/iiifd/go/bin:$PATH CGO_ENABLED=1 GOMODCACHE=/root/go/pkg/mod GOCACHE=/root/.cache/go-build
# versitygw at the version scripts/deps.sh pins.
RUN --mount=type=cache,target=/root/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
	v=$(sed -n 's/^VERSITYGW_VERSION=//p' scripts/deps.sh) \
	&& GOBIN=/out go install -trimpath -ldflags='-s -w' "github.com/versity/versitygw/cmd/versitygw@$v"

FROM scratch AS versitygw-context
COPY versitygw /out/versitygw

FROM ${VERSITYGW_FROM} AS versitygw-bin

FROM ${BASE_IMAGE} AS versitygw
COPY --from=versitygw-bin /out/versitygw /usr/local/bin/versitygw
RUN useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin store \
	&& mkdir -p /srv/store && chown 10001:10001 /srv/store
USER 10001:10001
EXPOSE 7070
ENTRYPOINT ["versitygw"]

# Redis and Varnish come from one apt run, in a stage both build on: one
# download of the package lists and one install for the two.
FROM ${BASE_IMAGE} AS services
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		redis-server varnish varnish-modules \
	&& rm -rf /var/lib/apt/lists/*

FROM services AS redis
USER redis
EXPOSE 6379
ENTRYPOINT ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--save", "", "--appendonly", "no", "--maxmemory", "256mb", "--maxmemory-policy", "allkeys-lru"]

FROM services AS varnish
COPY deploy/varnish/iiifd.vcl deploy/varnish/backends.vcl /etc/varnish/
EXPOSE 80
ENTRYPOINT ["varnishd", "-F", "-a", ":80", "-f", "/etc/varnish/iiifd.vcl", "-p", "vcl_path=/etc/varnish", "-s", "malloc,256m"]
