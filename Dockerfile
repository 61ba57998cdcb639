# The iiifd container image: built with libvips-dev, run on Debian
# bookworm-slim with the libvips runtime, as a non-root user. With no
# settings it serves the embedded sample images on :8080; every setting is
# an environment variable (IIIFD_* for iiifd's flags, AWS_* for S3,
# OTEL_* for tracing). See README "Deploying".
#
# It needs BuildKit (the default builder of Docker 23 and later; with
# Debian's docker.io 20.10, DOCKER_BUILDKIT=1): the Go build and module
# caches are cache mounts, so that a rebuild after a change compiles only
# what changed, and the two stages build at the same time. There is no
# "# syntax=" line, which would make BuildKit fetch a frontend image from a
# registry; the Dockerfile syntax built into Docker 20.10 is enough.
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
WORKDIR /src
# Go is fetched the way scripts/deps.sh does (the toolchain module from the
# module proxy), by scripts/deps.sh itself, which also installs the C
# build dependencies (gcc, pkg-config, libvips-dev and the rest), in one
# apt run. deploy/stack.Dockerfile's versitygw stage starts with these
# same steps, so that the two builds share them: keep them alike.
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
RUN --mount=type=cache,target=/root/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
	go build -trimpath -ldflags='-s -w' -o /out/iiifd ./cmd/iiifd

FROM ${BASE_IMAGE}
# The runtime libraries the binary links (libvips, OpenSlide, OpenJPH,
# TurboJPEG: Debian bookworm's package names), installed before the binary
# is there so that BuildKit does it while the build stage compiles. Then
# out go the loaders iiifd never uses (ImageMagick, PDF, OpenSlide's and
# JPEG XL's libvips modules: libvips loads them as modules), the libraries
# only they need, and the packages that came along holding no library at
# all (fonts, MIME and X11 data for text and desktop use): with them the
# image is over 250 MB. What stays is the closure (ldd) of those libraries
# and the HEIF/AVIF module, so JPEG, PNG, TIFF, WebP, GIF, JPEG 2000,
# HTJ2K, HEIC, AVIF and whole-slide formats all work, and ca-certificates
# for S3 and HTTPS origins. `iiifd version` below checks that the binary
# finds every library it links.
RUN dpkg-query -W -f '${Package}\n' | sort >/tmp/base-packages \
	&& apt-get update -qq \
	&& DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		libvips42 libopenslide0 libopenjph0.9 libturbojpeg0 ca-certificates \
	&& find /usr/lib -path '*/vips-modules-*/*.so' ! -name vips-heif.so -delete \
	&& for p in libvips42 libopenslide0 libopenjph0.9 libturbojpeg0; do dpkg -L "$p"; done \
		| grep -E '\.so(\.[0-9]+)*$' >/tmp/direct \
	&& find /usr/lib -path '*/vips-modules-*/*.so' >>/tmp/direct \
	&& for f in $(cat /tmp/direct); do if [ -e "$f" ]; then echo "$f"; ldd "$f"; fi; done \
		| awk '$3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | xargs readlink -f | sort -u >/tmp/needed \
	&& for p in $(dpkg-query -W -f '${Package}\n' | sort | comm -13 /tmp/base-packages -); do \
		libs=$(dpkg -L "$p" | grep -E '\.so(\.[0-9]+)*$' | xargs -r readlink -f | sort -u); \
		case "$p" in ca-certificates) continue ;; esac; \
		if [ -z "$libs" ]; then echo "$p"; \
		elif [ -z "$(printf '%s\n' "$libs" | comm -12 /tmp/needed -)" ]; then echo "$p"; fi; \
	done >/tmp/unneeded \
	&& xargs -r dpkg --purge --force-depends </tmp/unneeded >/dev/null \
	&& rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/* /tmp/* \
	&& useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin iiifd
COPY --from=build /out/iiifd /usr/local/bin/iiifd
RUN iiifd version
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
