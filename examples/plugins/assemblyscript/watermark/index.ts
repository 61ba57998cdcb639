// watermark in AssemblyScript: the same plugin as examples/plugins/watermark
// (Go), pixel for pixel. It stamps images larger than watermark.min-size
// pixels (default 400) on their longer side with a square of diagonal
// stripes in the bottom-right corner, a quarter of the shorter side wide,
// at watermark.opacity (default 0.5).
//
// With watermark.per-user=COOKIE the stripes get a colour of their own
// for each value of that cookie, and requests without it get none: the
// plugin declares that its overlay depends on the cookie (overlayVary),
// so iiifd gives it the cookie and never serves one user's stamped image
// to another.
import { Fields, Image, onConfigure, overlayVary, overlayWith } from "../../../../sdk/assemblyscript/index";
export { iiifd_alloc, configure } from "../../../../sdk/assemblyscript/index";

let minSize: i32 = 400;
let opacity: f64 = 0.5;
let perUser = "";

// count parses a decimal pixel count, or returns -1.
function count(s: string): i32 {
  if (s.length == 0 || s.length > 9) return -1;
  let n: i32 = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return -1;
    n = n * 10 + (c - 48);
  }
  return n;
}

function setup(config: Fields): string {
  const m = config.get("min-size");
  if (m.length > 0) {
    minSize = count(m);
    if (minSize < 0) return "min-size " + m + " is not a pixel count";
  }
  const o = config.get("opacity");
  if (o.length > 0) {
    opacity = F64.parseFloat(o);
    if (!(opacity >= 0 && opacity <= 1)) return "opacity " + o + " is not in 0..1";
  }
  perUser = config.get("per-user");
  if (perUser.length > 0) overlayVary(["cookie:" + perUser]);
  return "";
}
onConfigure(setup);

function stamp(req: Fields): Image | null {
  const w = req.int("width");
  const h = req.int("height");
  if (max(w, h) <= minSize) return null;
  let ink: u32 = 0x000000; // 0xBBGGRR
  if (perUser.length > 0) {
    const user = req.cookie(perUser);
    if (user.length == 0) return null;
    ink = fnv32a(String.UTF8.encode(user)) & 0xffffff;
  }
  const side = max(min(w, h) / 4, 8);
  const margin = side / 8;
  return new Image(mark(side, ink), w - side - margin, h - side - margin, opacity);
}

export function overlay(ptr: usize, size: u32): u64 {
  return overlayWith(size, stamp);
}

// fnv32a is the 32-bit FNV-1a hash of b (Go's hash/fnv New32a).
function fnv32a(b: ArrayBuffer): u32 {
  const bytes = Uint8Array.wrap(b);
  let v: u32 = 2166136261;
  for (let i = 0; i < bytes.length; i++) {
    v ^= bytes[i];
    v *= 16777619;
  }
  return v;
}

// mark draws the watermark, white diagonal stripes and stripes of ink
// (0xBBGGRR), as an RGBA PNG.
function mark(side: i32, ink: u32): ArrayBuffer {
  const stripe = max(side / 8, 1);
  const row = side * 4 + 1; // a filter byte (0, none), then the pixels
  const raw = new Uint8Array(row * side);
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      const p = y * row + 1 + x * 4;
      let c: u32 = 0xffffff;
      if (((x + y) / stripe) % 2 == 1) c = ink;
      raw[p] = <u8>c;
      raw[p + 1] = <u8>(c >> 8);
      raw[p + 2] = <u8>(c >> 16);
      raw[p + 3] = 255;
    }
  }
  return encodePNG(side, side, raw);
}

// encodePNG wraps the filtered RGBA rows raw of a width × height image
// in a PNG. Its zlib stream holds stored (uncompressed) deflate blocks:
// no compressor in the guest, and the host decodes the PNG at once.
function encodePNG(width: i32, height: i32, raw: Uint8Array): ArrayBuffer {
  const blocks = max((raw.length + 65534) / 65535, 1);
  const zlen = 2 + raw.length + 5 * blocks + 4;
  const out = new Uint8Array(8 + (12 + 13) + (12 + zlen) + 12);
  const sig: u8[] = [137, 80, 78, 71, 13, 10, 26, 10];
  for (let i = 0; i < 8; i++) out[i] = sig[i];
  let off = 8;

  // IHDR: size, 8 bits per sample, colour type 6 (RGBA).
  off = chunkStart(out, off, 13, "IHDR");
  putU32(out, off, <u32>width);
  putU32(out, off + 4, <u32>height);
  out[off + 8] = 8;
  out[off + 9] = 6;
  off = chunkEnd(out, off + 13, 13);

  off = chunkStart(out, off, zlen, "IDAT");
  const data = off;
  out[off++] = 0x78; // zlib: deflate, 32 KiB window
  out[off++] = 0x01; // no preset dictionary, lowest level; a multiple of 31
  for (let b = 0, pos = 0; b < blocks; b++) {
    const n = min(raw.length - pos, 65535);
    out[off++] = b == blocks - 1 ? 1 : 0; // final flag, type 0 (stored)
    out[off++] = <u8>n;
    out[off++] = <u8>(n >> 8);
    out[off++] = <u8>~n;
    out[off++] = <u8>(~n >> 8);
    for (let i = 0; i < n; i++) out[off + i] = raw[pos + i];
    off += n;
    pos += n;
  }
  putU32(out, off, adler32(raw));
  off = chunkEnd(out, off + 4, off + 4 - data);

  off = chunkStart(out, off, 0, "IEND");
  chunkEnd(out, off, 0);
  return out.buffer;
}

// chunkStart writes a chunk's length and type at off and returns where
// its data goes.
function chunkStart(out: Uint8Array, off: i32, length: i32, type: string): i32 {
  putU32(out, off, <u32>length);
  for (let i = 0; i < 4; i++) out[off + 4 + i] = <u8>type.charCodeAt(i);
  return off + 8;
}

// chunkEnd writes the CRC of the chunk whose data of length bytes ends
// at end, and returns where the next chunk goes.
function chunkEnd(out: Uint8Array, end: i32, length: i32): i32 {
  putU32(out, end, crc32(out, end - length - 4, end));
  return end + 4;
}

function putU32(out: Uint8Array, off: i32, v: u32): void {
  out[off] = <u8>(v >> 24);
  out[off + 1] = <u8>(v >> 16);
  out[off + 2] = <u8>(v >> 8);
  out[off + 3] = <u8>v;
}

const crcTable = new StaticArray<u32>(256);
for (let n = 0; n < 256; n++) {
  let c = <u32>n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  crcTable[n] = c;
}

// crc32 is the CRC-32 of b[start:end], as PNG chunks carry it.
function crc32(b: Uint8Array, start: i32, end: i32): u32 {
  let c: u32 = 0xffffffff;
  for (let i = start; i < end; i++) c = crcTable[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return c ^ 0xffffffff;
}

// adler32 is the checksum that ends a zlib stream.
function adler32(b: Uint8Array): u32 {
  let a: u32 = 1;
  let s: u32 = 0;
  for (let i = 0; i < b.length; i++) {
    a = (a + b[i]) % 65521;
    s = (s + a) % 65521;
  }
  return (s << 16) | a;
}
