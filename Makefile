# Builds the example plugins into examples/plugins/<name>/<name>.wasm:
# Go ones with the stock toolchain (a WASI reactor), the AssemblyScript
# one with asc from examples/plugins/assemblyscript/node_modules.
GO ?= go
GO_PLUGINS := $(notdir $(patsubst %/main.go,%,$(wildcard examples/plugins/*/main.go)))
AS_DIR := examples/plugins/assemblyscript
AS_PLUGINS := $(notdir $(patsubst %/index.ts,%,$(wildcard $(AS_DIR)/*/index.ts)))

.PHONY: plugins clean-plugins
plugins: $(foreach p,$(GO_PLUGINS),examples/plugins/$(p)/$(p).wasm) \
	$(foreach p,$(AS_PLUGINS),$(AS_DIR)/$(p)/$(p).wasm)

examples/plugins/%.wasm: $(wildcard examples/plugins/*/main.go sdk/go/iiifdplugin/*.go) go.mod
	GOOS=wasip1 GOARCH=wasm CGO_ENABLED=0 $(GO) build -buildmode=c-shared -o $@ ./$(dir $@)

$(AS_DIR)/node_modules/.bin/asc: $(AS_DIR)/package.json
	cd $(AS_DIR) && npm ci --no-audit --no-fund
	touch $@

$(AS_DIR)/%.wasm: $(AS_DIR)/node_modules/.bin/asc $(wildcard $(AS_DIR)/*/index.ts sdk/assemblyscript/*.ts)
	cd $(AS_DIR) && node_modules/.bin/asc $(patsubst $(AS_DIR)/%,%,$(dir $@))index.ts \
		--config asconfig.json --target release --outFile $(patsubst $(AS_DIR)/%,%,$@)

clean-plugins:
	rm -f examples/plugins/*/*.wasm $(AS_DIR)/*/*.wasm

# The edge worker (issue 16): dist/edge/ holds the worker module, Go's
# js/wasm glue (copied from the toolchain, not committed), the engine
# module, and the configurations for workerd and wrangler. The build
# prints the gzip size of what is uploaded and fails past the Workers
# free plan's 3 MiB.
EDGE := dist/edge
EDGE_MAX := 3145728
.PHONY: edge
edge:
	mkdir -p $(EDGE)
	GOOS=js GOARCH=wasm CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -o $(EDGE)/iiifd-edge.wasm ./cmd/iiifd-edge
	root="$$($(GO) env GOROOT)"; \
	if [ -f "$$root/lib/wasm/wasm_exec.js" ]; then cp "$$root/lib/wasm/wasm_exec.js" $(EDGE)/; \
	else cp "$$root/misc/wasm/wasm_exec.js" $(EDGE)/; fi
	cp edge/worker.mjs edge/workerd.capnp edge/wrangler.toml $(EDGE)/
	@size=$$(cat $(EDGE)/worker.mjs $(EDGE)/wasm_exec.js $(EDGE)/iiifd-edge.wasm | gzip -9 | wc -c); \
	raw=$$(cat $(EDGE)/worker.mjs $(EDGE)/wasm_exec.js $(EDGE)/iiifd-edge.wasm | wc -c); \
	echo "edge: $(EDGE) upload $$raw bytes, $$size bytes gzip (limit $(EDGE_MAX))"; \
	[ $$size -le $(EDGE_MAX) ] || { echo "edge: compressed upload larger than 3 MiB" >&2; exit 1; }

# The browser engine of `iiifd publish` (issue 18): the edge worker's
# module and Go's wasm_exec.js, written where package publish embeds them.
# Build it before iiifd (scripts/serve and scripts/test do).
PUBLISH_ENGINE := internal/publish/engine
.PHONY: publish-assets
publish-assets:
	GOOS=js GOARCH=wasm CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -o $(PUBLISH_ENGINE)/iiifd-edge.wasm ./cmd/iiifd-edge
	root="$$($(GO) env GOROOT)"; \
	if [ -f "$$root/lib/wasm/wasm_exec.js" ]; then cp "$$root/lib/wasm/wasm_exec.js" $(PUBLISH_ENGINE)/; \
	else cp "$$root/misc/wasm/wasm_exec.js" $(PUBLISH_ENGINE)/; fi
