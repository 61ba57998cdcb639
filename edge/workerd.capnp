# workerd configuration of the iiifd edge worker, for running it locally:
#   ORIGIN=http://127.0.0.1:9000/images workerd serve dist/edge/workerd.capnp --socket-addr http=127.0.0.1:8787
# Every setting is read from the environment variable of its name; unset
# ones take the worker's defaults (see README, "At the edge").
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "main", worker = .iiifdWorker),
    # The origin may be on this machine or the local network when run
    # locally; the worker fetches nothing but keys under ORIGIN.
    (name = "internet", network = (allow = ["public", "private", "local"])),
  ],
  sockets = [(name = "http", address = "127.0.0.1:8787", http = (), service = "main")],
);

const iiifdWorker :Workerd.Worker = (
  modules = [
    (name = "worker.mjs", esModule = embed "worker.mjs"),
    (name = "wasm_exec.js", esModule = embed "wasm_exec.js"),
    (name = "iiifd-edge.wasm", wasm = embed "iiifd-edge.wasm"),
  ],
  compatibilityDate = "2026-11-01",
  globalOutbound = "internet",
  bindings = [
    (name = "ORIGIN", fromEnvironment = "ORIGIN"),
    (name = "ORIGIN_TIMEOUT", fromEnvironment = "ORIGIN_TIMEOUT"),
    (name = "MAX_WIDTH", fromEnvironment = "MAX_WIDTH"),
    (name = "MAX_HEIGHT", fromEnvironment = "MAX_HEIGHT"),
    (name = "MAX_AREA", fromEnvironment = "MAX_AREA"),
    (name = "FORMAT_LIMITS", fromEnvironment = "FORMAT_LIMITS"),
    (name = "JPEG_QUALITY", fromEnvironment = "JPEG_QUALITY"),
    (name = "BASE_URL", fromEnvironment = "BASE_URL"),
  ],
);
