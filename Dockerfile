# syntax=docker/dockerfile:1
# The iiifd container image: built with libvips-dev, run on Debian
# bookworm-slim with the libvips runtime, as a non-root user. With no
# settings it serves the embedded sample images on :8080; every setting is
# an environment variable (IIIFD_* for iiifd's flags, AWS_* for S3,
# OTEL_* for tracing). See README "Deploying".
#
# BASE_IMAGE is the base of both stages, so that a locally made Debian
# image can stand in where no registry is reachable (scripts/test-container
# makes one with debootstrap).
ARG BASE_IMAGE=debian:bookworm-slim

FROM ${BASE_IMAGE} AS build
# The Go module proxy the toolchain and the modules come from (GOPROXY
# as the go command reads it; empty means Go's default).
ARG GOPROXY
ENV GOPROXY=${GOPROXY} GOFLAGS=-buildvcs=false
# EXTRA_CA_CERTS (PEM) are certificate authorities the build stage trusts
# besides Debian's, for networks that inspect TLS; the final image does
# not keep them.
ARG EXTRA_CA_CERTS
RUN if [ -n "$EXTRA_CA_CERTS" ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ca-certificates \
		&& printf '%s\n' "$EXTRA_CA_CERTS" > /usr/local/share/ca-certificates/build-extra.crt \
		&& update-ca-certificates; fi
WORKDIR /src
# Go is fetched the way scripts/deps.sh does (the toolchain module from the
# module proxy), by scripts/deps.sh itself, which also installs the C
# build dependencies (gcc, pkg-config, libvips-dev).
COPY go.mod go.sum ./
COPY scripts/deps.sh scripts/deps.sh
RUN apt-get update -qq && bash -c '. scripts/deps.sh && go version' \
	&& rm -rf /var/lib/apt/lists/*
ENV PATH=/root/.cache/iiifd/go/bin:$PATH CGO_ENABLED=1
RUN go mod download
# Only what the binary is built from, so that a change elsewhere (docs,
# scripts, deploy/) keeps the build's layers cached.
COPY cmd cmd
COPY internal internal
COPY scripts/web-assets scripts/web-assets
COPY web/package.json web/package-lock.json web/
# The viewer's OpenSeadragon files are embedded when present (the build
# context has them after scripts/web-assets); otherwise they are fetched
# with npm here.
RUN if [ ! -f internal/web/assets/osd/openseadragon.min.js ]; then \
		apt-get update -qq && scripts/web-assets && rm -rf /var/lib/apt/lists/*; fi
RUN go build -trimpath -ldflags='-s -w' -o /out/iiifd ./cmd/iiifd \
	&& mkdir -p /out/samples && cp internal/samples/images/* /out/samples/

FROM ${BASE_IMAGE}
# libvips42 without its recommendations, then without the loaders iiifd
# never uses (ImageMagick, PDF, OpenSlide, JPEG XL: libvips loads them as
# modules), the libraries only they need, and the packages that came with
# it holding no library at all (fonts, MIME and X11 data for text and
# desktop use): with them the image is over 250 MB. What stays is what the
# binary and the HEIF/AVIF module link (ldd), so JPEG, PNG, TIFF, WebP,
# GIF, JPEG 2000, HEIC and AVIF all work, and ca-certificates for S3 and
# HTTPS origins.
COPY --from=build /out/iiifd /usr/local/bin/iiifd
RUN dpkg-query -W -f '${Package}\n' | sort >/tmp/base-packages \
	&& apt-get update -qq \
	&& DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libvips42 ca-certificates \
	&& find /usr/lib -path '*/vips-modules-*/*.so' ! -name vips-heif.so -delete \
	&& { ldd /usr/local/bin/iiifd; find /usr/lib -path '*/vips-modules-*/*.so' -exec ldd {} \; ; } \
		| awk '$3 ~ /^\// {print $3}' | xargs readlink -f | sort -u >/tmp/needed \
	&& for p in $(dpkg-query -W -f '${Package}\n' | sort | comm -13 /tmp/base-packages -); do \
		libs=$(dpkg -L "$p" | grep -E '\.so(\.[0-9]+)*$' | xargs -r readlink -f | sort -u); \
		case "$p" in ca-certificates) continue ;; esac; \
		if [ -z "$libs" ]; then echo "$p"; \
		elif [ -z "$(printf '%s\n' "$libs" | comm -12 /tmp/needed -)" ]; then echo "$p"; fi; \
	done >/tmp/unneeded \
	&& xargs -r dpkg --purge --force-depends </tmp/unneeded >/dev/null \
	&& iiifd version \
	&& rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/* /tmp/* \
	&& useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin iiifd
# The sample images as files too, for `iiifd ingest` into a store
# (deploy/compose.yaml uploads them to S3 with it).
COPY --from=build /out/samples /usr/share/iiifd/samples
# Temporary files (the extracted samples, whole copies of remote images,
# uploads being ingested) go to /tmp, the one writable place a read-only
# root file system needs (an emptyDir in the Helm chart).
ENV IIIFD_ADDR=:8080 TMPDIR=/tmp
USER 10001:10001
EXPOSE 8080
# iiifd health asks /healthz on the port of IIIFD_ADDR.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 CMD ["iiifd", "health"]
# SIGTERM starts the graceful drain (IIIFD_DRAIN_DELAY, then in-flight
# requests finish within IIIFD_SHUTDOWN_TIMEOUT).
STOPSIGNAL SIGTERM
ENTRYPOINT ["iiifd"]
CMD ["serve"]
