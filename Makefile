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
