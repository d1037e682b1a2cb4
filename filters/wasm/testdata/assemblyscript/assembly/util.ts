// Helpers for the hostcalls the SDK declares but does not wrap (or
// wraps with the wrong pointer arguments): shared data with CAS, queue
// tokens, body replacement and metric reads.
import { free } from "@solo-io/proxy-runtime/malloc";
import { HeaderPair } from "@solo-io/proxy-runtime";

/** Out receives a buffer the host allocated with malloc. */
export class Out {
  ptr: usize = 0;
  size: usize = 0;

  ptrPtr(): usize { return changetype<usize>(this) + offsetof<Out>("ptr"); }
  sizePtr(): usize { return changetype<usize>(this) + offsetof<Out>("size"); }

  /** take returns the host's bytes as an ArrayBuffer, once per call. */
  take(): ArrayBuffer {
    if (this.size == 0 || this.ptr == 0) {
      return new ArrayBuffer(0);
    }
    let b = changetype<ArrayBuffer>(this.ptr);
    // malloc retained it for the host; b holds its own reference now.
    free(this.ptr);
    this.ptr = 0;
    return b;
  }
}

/** Word is a 32-bit out parameter (a token, a CAS, a metric id). */
export class Word {
  value: u32 = 0;
  ptr(): usize { return changetype<usize>(this) + offsetof<Word>("value"); }
}

/** Wide is a 64-bit out parameter (a metric value). */
export class Wide {
  value: u64 = 0;
  ptr(): usize { return changetype<usize>(this) + offsetof<Wide>("value"); }
}

// @ts-ignore: decorator
@external("env", "proxy_set_buffer_bytes")
declare function proxy_set_buffer_bytes(typ: i32, start: u32, length: u32, data: usize, size: usize): u32;

/** setBuffer replaces length bytes at start of buffer typ with s. */
export function setBuffer(typ: i32, start: u32, length: u32, s: string): u32 {
  let b = String.UTF8.encode(s);
  return proxy_set_buffer_bytes(typ, start, length, changetype<usize>(b), b.byteLength);
}

/** utf8 decodes a buffer. */
export function utf8(b: ArrayBuffer): string {
  return String.UTF8.decode(b);
}

// @ts-ignore: decorator
@external("env", "proxy_set_header_map_pairs")
declare function proxy_set_header_map_pairs(typ: i32, data: usize, size: usize): u32;

/**
 * setPairs replaces header map typ with pairs, serialized as the ABI
 * says (count, then key and value sizes, then NUL-terminated bytes).
 * The SDK's own set_headers does not compile with asc 0.14 (it returns
 * a void call's value), so plugins use this.
 */
export function setPairs(typ: i32, pairs: Array<HeaderPair>): u32 {
  let size = 4;
  for (let i = 0; i < pairs.length; i++) {
    size += 8 + pairs[i].key.byteLength + 1 + pairs[i].value.byteLength + 1;
  }
  let buf = new ArrayBuffer(size);
  let p = changetype<usize>(buf);
  store<u32>(p, pairs.length);
  let sizes = p + 4;
  let data = sizes + 8 * pairs.length;
  for (let i = 0; i < pairs.length; i++) {
    let k = pairs[i].key, v = pairs[i].value;
    store<u32>(sizes + 8 * i, k.byteLength);
    store<u32>(sizes + 8 * i + 4, v.byteLength);
    memory.copy(data, changetype<usize>(k), k.byteLength);
    data += k.byteLength;
    store<u8>(data, 0);
    data += 1;
    memory.copy(data, changetype<usize>(v), v.byteLength);
    data += v.byteLength;
    store<u8>(data, 0);
    data += 1;
  }
  return proxy_set_header_map_pairs(typ, p, size);
}
