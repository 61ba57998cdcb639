// The AssemblyScript SDK of iiifd plugins: it owns the memory exchange
// with the host (the iiifd_alloc and configure exports), decodes requests
// and encodes replies. A plugin re-exports iiifd_alloc and configure and
// exports the hooks it implements, each handing the call to this module:
//
//   export { iiifd_alloc, configure } from "<path>/sdk/assemblyscript/index";
//   export function authorize(ptr: usize, size: u32): u64 { return authorizeWith(size, check); }
//   export function overlay(ptr: usize, size: u32): u64 { return overlayWith(size, stamp); }
//
// Values are decoded as UTF-8 text. See docs/PLUGINS.md for the ABI.

// The host writes each request into inBuf; outBuf holds the last reply
// until the next call, so that the host can read it. Both are referenced
// from globals, so the collector keeps them (and never moves objects).
let inBuf = new ArrayBuffer(256);
let outBuf = new ArrayBuffer(64);

export function iiifd_alloc(size: u32): usize {
  if (<i32>size > inBuf.byteLength) {
    inBuf = new ArrayBuffer(<i32>size);
  }
  return changetype<usize>(inBuf);
}

// Fields is a request's payload, read where the host wrote it: only the
// values asked for are decoded, so a hook pays for what it reads. Fields
// are valid during the call that received them only.
export class Fields {
  constructor(public base: usize, public size: u32) {}

  // get returns the value of the first field named key, or "".
  get(key: string): string {
    const kb = String.UTF8.encode(key);
    const kp = changetype<usize>(kb);
    const kl = <u32>kb.byteLength;
    const base = this.base;
    const size = this.size;
    let off: u32 = 0;
    while (off + 4 <= size) {
      const n = load<u32>(base + off);
      off += 4;
      if (n > size - off) break;
      const k = off;
      off += n;
      if (off + 4 > size) break;
      const m = load<u32>(base + off);
      off += 4;
      if (m > size - off) break;
      if (n == kl && memory.compare(base + k, kp, n) == 0) {
        return String.UTF8.decodeUnsafe(base + off, m);
      }
      off += m;
    }
    return "";
  }

  // header returns a request header's first value (lower-case name).
  header(name: string): string {
    return this.get("header:" + name);
  }

  // cookie returns a request cookie's value.
  cookie(name: string): string {
    return this.get("cookie:" + name);
  }

  // int returns the field named key as an integer (0 when absent or not
  // a number), e.g. an overlay's "width" and "height".
  int(key: string): i32 {
    const v = this.get(key);
    if (v.length == 0) return 0;
    return I32.parseInt(v, 10);
  }
}

// decode returns the request the host wrote into inBuf. The host writes
// a payload there without calling iiifd_alloc again while it fits.
export function decode(size: u32): Fields {
  if (<i32>size > inBuf.byteLength) return new Fields(0, 0);
  return new Fields(changetype<usize>(inBuf), size);
}

// reply encodes the fields keys[i] = values[i] into outBuf and returns
// its address and length packed as hooks return them.
export function reply(keys: string[], values: string[]): u64 {
  const bytes = new Array<ArrayBuffer>(values.length);
  for (let i = 0; i < values.length; i++) {
    bytes[i] = String.UTF8.encode(values[i]);
  }
  return replyBytes(keys, bytes);
}

// replyBytes is reply with values as bytes, such as an overlay's PNG.
export function replyBytes(keys: string[], values: ArrayBuffer[]): u64 {
  const parts = new Array<ArrayBuffer>(0);
  let total = 0;
  for (let i = 0; i < keys.length; i++) {
    const k = String.UTF8.encode(keys[i]);
    const v = values[i];
    parts.push(k);
    parts.push(v);
    total += 8 + k.byteLength + v.byteLength;
  }
  if (total > outBuf.byteLength) {
    outBuf = new ArrayBuffer(total);
  }
  const base = changetype<usize>(outBuf);
  let off: usize = 0;
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    store<u32>(base + off, <u32>p.byteLength);
    memory.copy(base + off + 4, changetype<usize>(p), <usize>p.byteLength);
    off += 4 + <usize>p.byteLength;
  }
  return (<u64>base << 32) | <u64>total;
}

// A configuration function returns "" to accept, or why it refuses.
let configureFn: (config: Fields) => string = (config: Fields): string => "";

// onConfigure registers the function that receives the plugin's settings
// (NAME.KEY=VALUE, keys without the name) when an instance starts.
export function onConfigure(fn: (config: Fields) => string): void {
  configureFn = fn;
}

let overlayVaryKeys: string[] = [];

// overlayVary declares the client fields ("client", "header:NAME",
// "cookie:NAME") that the plugin's overlay depends on, for overlays that
// differ by user or institution. The host gives the overlay only these
// besides the request's own fields, keeps its output apart for each
// value of them, and sends it to no other client: Vary names the
// headers, and a dependence on cookies, Authorization or the client's
// address makes the response private and keeps it out of the derivative
// cache. Call it at the top level of the plugin or in the function given
// to onConfigure; a later call replaces the keys of an earlier one.
export function overlayVary(keys: string[]): void {
  overlayVaryKeys = keys;
}

export function configure(ptr: usize, size: u32): u64 {
  const err = configureFn(decode(size));
  if (err.length > 0) return reply(["error"], [err]);
  if (overlayVaryKeys.length > 0) return reply(["overlay-vary"], [overlayVaryKeys.join(",")]);
  return reply([], []);
}

// Decision is authorize's answer.
export class Decision {
  keys: string[] = [];
  values: string[] = [];
}

export function allow(): Decision {
  return new Decision();
}

// allowMax grants access to at most width × height pixels.
export function allowMax(width: i32, height: i32): Decision {
  const d = new Decision();
  d.keys = ["action", "max-width", "max-height"];
  d.values = ["allow", width.toString(), height.toString()];
  return d;
}

// deny refuses with 401 or 403, a message and (for 401) a challenge.
export function deny(status: i32, message: string, challenge: string): Decision {
  const d = new Decision();
  d.keys = ["action", "status", "message", "challenge"];
  d.values = ["deny", status.toString(), message, challenge];
  return d;
}

// redirect sends the client to location.
export function redirect(status: i32, location: string): Decision {
  const d = new Decision();
  d.keys = ["action", "status", "location"];
  d.values = ["redirect", status.toString(), location];
  return d;
}

// authorizeWith answers an authorize call with fn.
export function authorizeWith(size: u32, fn: (req: Fields) => Decision): u64 {
  const d = fn(decode(size));
  return reply(d.keys, d.values);
}

// resolveWith answers a resolve call with fn, which returns the key of
// the identifier's image, "" to leave it to the next plugin, or null
// when there is no such image.
export function resolveWith(size: u32, fn: (id: string) => string | null): u64 {
  const key = fn(decode(size).get("id"));
  if (key === null) return reply(["notfound"], ["1"]);
  if (key.length == 0) return reply([], []);
  return reply(["key"], [key]);
}

// infoWith answers an info call with fn, which returns a JSON object of
// fields to add to info.json, or "".
export function infoWith(size: u32, fn: (req: Fields) => string): u64 {
  const js = fn(decode(size));
  if (js.length == 0) return reply([], []);
  return reply(["json"], [js]);
}

// Image is an overlay: PNG bytes placed with their top-left corner at x, y
// of the output (either may be negative), with an opacity of 0..1.
export class Image {
  constructor(public png: ArrayBuffer, public x: i32 = 0, public y: i32 = 0, public opacity: f64 = 1) {}
}

// overlayWith answers an overlay call with fn, which is given the request
// and the output's size (fields "width" and "height", see Fields.int)
// and returns an image to put over the output, or null for none.
export function overlayWith(size: u32, fn: (req: Fields) => Image | null): u64 {
  const img = fn(decode(size));
  if (img === null) return reply([], []);
  return replyBytes(["png", "x", "y", "opacity"], [
    img.png,
    String.UTF8.encode(img.x.toString()),
    String.UTF8.encode(img.y.toString()),
    String.UTF8.encode(img.opacity.toString()),
  ]);
}
