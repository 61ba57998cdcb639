# shellcheck shell=bash
# Sourced by the other scripts: makes sure the build and test tools are
# present, installing what is missing (Debian packages with apt-get, the Go
# toolchain from the Go module proxy), and puts them on PATH.
set -euo pipefail

GO_VERSION=$(awk '/^go /{print $2; exit}' "$(dirname "${BASH_SOURCE[0]}")/../go.mod")

as_root() {
	if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
		echo "need root to run: $*" >&2
		return 1
	fi
}

apt_install() {
	local missing=()
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "==> installing ${missing[*]}" >&2
	# Install from the package lists as they are; refresh them only when
	# that fails (a fresh machine has none, an old one may be stale).
	if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2; then
		as_root apt-get update -qq
		as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
	fi
}

go_ok() {
	command -v go >/dev/null || return 1
	local have
	have=$(go env GOVERSION 2>/dev/null | sed 's/^go//')
	[ "$(printf '%s\n%s\n' "$GO_VERSION" "$have" | sort -V | head -1)" = "$GO_VERSION" ]
}

ensure_go() {
	for d in /usr/local/go/bin "$HOME/.cache/iiifd/go/bin"; do
		[ -x "$d/go" ] && case ":$PATH:" in *":$d:"*) ;; *) PATH="$d:$PATH" ;; esac
	done
	export PATH
	go_ok && return 0
	# The Go toolchain is published as a module on the Go module proxy; this
	# is what GOTOOLCHAIN=auto downloads too.
	apt_install curl ca-certificates unzip
	local proxy arch dest
	proxy=$(printf '%s' "${GOPROXY:-}" | tr ',|' '\n\n' | grep -m1 '^https\?://' || true)
	proxy=${proxy:-https://proxy.golang.org}
	case "$(dpkg --print-architecture)" in
	amd64) arch=amd64 ;;
	arm64) arch=arm64 ;;
	*)
		echo "no Go toolchain for $(dpkg --print-architecture) here: install Go $GO_VERSION by hand" >&2
		return 1
		;;
	esac
	dest="$HOME/.cache/iiifd"
	echo "==> fetching Go $GO_VERSION from the module proxy" >&2
	mkdir -p "$dest"
	curl -fsSL "$proxy/golang.org/toolchain/@v/v0.0.1-go$GO_VERSION.linux-$arch.zip" -o "$dest/go.zip"
	rm -rf "$dest/go" "$dest/golang.org"
	unzip -q "$dest/go.zip" -d "$dest"
	mv "$dest/golang.org/toolchain@v0.0.1-go$GO_VERSION.linux-$arch" "$dest/go"
	rm -rf "$dest/go.zip" "$dest/golang.org"
	chmod +x "$dest/go/bin/"* "$dest/go/pkg/tool/"*/* 2>/dev/null || true
	PATH="$dest/go/bin:$PATH"
	export PATH
	go_ok || {
		echo "Go $GO_VERSION could not be installed" >&2
		return 1
	}
}

# Build dependencies: C and C++ compilers for cgo, libvips and pkg-config;
# OpenJPH decodes High-Throughput JPEG 2000 and TurboJPEG cuts stored JPEG
# tiles losslessly (both in internal/pixels); OpenSlide's headers for
# whole-slide images, which internal/pixels reads through OpenSlide's API.
# OpenJPH's tools are the reference the HTJ2K tests compare with.
apt_install gcc g++ libc6-dev pkg-config libvips-dev libopenjph-dev libturbojpeg0-dev openjph-tools libopenslide-dev

# ensure_slide_tools installs what the whole-slide tests and
# scripts/make-slides use: libtiff's tiffcp, tiffset and tiffinfo to
# write Aperio and Philips slides, bc, OpenSlide's own tools and Python
# binding to compare with (openslide-write-png, python3-openslide, for
# /usr/bin/python3).
ensure_slide_tools() {
	apt_install libvips-tools libtiff-tools bc openslide-tools python3-openslide
}
ensure_go
export CGO_ENABLED=1

# npm_ci DIR installs the npm packages DIR's package-lock.json pins into
# DIR/node_modules (the AssemblyScript compiler of the example plugins),
# unless they are there already. Node and npm come from Debian when
# missing.
npm_ci() {
	local dir=$1 bin=${2:-asc}
	command -v npm >/dev/null || apt_install nodejs npm
	if [ ! -x "$dir/node_modules/.bin/$bin" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules" ]; then
		echo "==> npm ci in $dir" >&2
		(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >&2)
	fi
}

# versitygw, the S3-compatible server the S3 source tests run against
# (never a mock), built from the Go module proxy into Go's bin directory.
VERSITYGW_VERSION=v1.8.0
ensure_versitygw() {
	local bin
	bin="$(go env GOPATH)/bin"
	case ":$PATH:" in *":$bin:"*) ;; *) PATH="$bin:$PATH" ;; esac
	export PATH
	if [ -x "$bin/versitygw" ] && go version -m "$bin/versitygw" 2>/dev/null | grep -q "mod[[:space:]]*github.com/versity/versitygw[[:space:]]*$VERSITYGW_VERSION"; then
		return 0
	fi
	echo "==> installing versitygw $VERSITYGW_VERSION (go install)" >&2
	go install "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION"
}

# helm, for the chart's tests (deploy/helm/test), built from the Go module
# proxy at a pinned version into a directory of its own.
HELM_VERSION=v4.3.2
ensure_helm() {
	local dir="$HOME/.cache/iiifd/helm-$HELM_VERSION"
	if [ ! -x "$dir/helm" ]; then
		echo "==> installing helm $HELM_VERSION (go install)" >&2
		GOBIN="$dir" go install "helm.sh/helm/v4/cmd/helm@$HELM_VERSION"
	fi
	HELM="$dir/helm"
	export HELM
}
