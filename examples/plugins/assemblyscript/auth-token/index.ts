// auth-token in AssemblyScript: the same plugin as examples/plugins/auth-token
// (Go). It allows requests carrying "Authorization: Bearer TOKEN" and
// answers 401 to the others; the token is auth-token.token, "letmein" by
// default; with auth-token.degraded=N, requests without the token are
// served at most N pixels instead.
import { Fields, Decision, allow, allowMax, deny, authorizeWith, onConfigure } from "../../../../sdk/assemblyscript/index";
export { iiifd_alloc, configure } from "../../../../sdk/assemblyscript/index";

let token = "letmein";
let degraded: i32 = 0;

function setup(config: Fields): string {
  const t = config.get("token");
  if (t.length > 0) token = t;
  const d = config.get("degraded");
  if (d.length > 0) {
    degraded = I32.parseInt(d);
    if (degraded < 1) return "degraded " + d + " is not a pixel count";
  }
  return "";
}
onConfigure(setup);

function check(req: Fields): Decision {
  if (req.header("authorization") == "Bearer " + token) return allow();
  if (degraded > 0) return allowMax(degraded, degraded);
  return deny(401, "a valid bearer token is required", 'Bearer realm="iiifd"');
}

export function authorize(ptr: usize, size: u32): u64 {
  return authorizeWith(size, check);
}
