// What the filter takes from WASI, which Envoy provides (wasi_snapshot_preview1 is in its import table):
// VM environment variables (Istio `vmConfig.env`) and random bytes.
import { environ_get, environ_sizes_get, random_get } from "bindings/wasi_snapshot_preview1";

/** The value of environment variable `name`, or null when it is unset or unreadable. */
export function getEnv(name: string): string | null {
  let sizes = new ArrayBuffer(8);
  let sp = changetype<usize>(sizes);
  if (environ_sizes_get(sp, sp + 4) != 0) return null;
  let count = load<u32>(sp);
  let bufSize = load<u32>(sp, 4);
  if (count == 0 || bufSize == 0) return null;
  let pointers = new ArrayBuffer(<i32>count * 4);
  let data = new ArrayBuffer(<i32>bufSize);
  let pp = changetype<usize>(pointers);
  let dp = changetype<usize>(data);
  if (environ_get(pp, dp) != 0) return null;
  let prefix = String.UTF8.encode(name + "=");
  let plen = prefix.byteLength;
  let end = dp + bufSize;
  for (let i: u32 = 0; i < count; i++) {
    let entry = load<usize>(pp + i * 4);
    if (entry < dp || entry >= end) continue; // a host writing outside the buffer is ignored
    let max = <i32>(end - entry);
    let len = 0;
    while (len < max && load<u8>(entry + len) != 0) len++;
    if (len < plen || memory.compare(entry, changetype<usize>(prefix), plen) != 0) continue;
    return String.UTF8.decodeUnsafe(entry + plen, len - plen);
  }
  return null;
}

/**
 * 64 random bits from the host (WASI random_get, not Math.random, whose seed import Envoy lacks);
 * 0 if the host refuses.
 */
export function randomU64(): u64 {
  let buf = new ArrayBuffer(8);
  if (random_get(changetype<usize>(buf), 8) != 0) return 0;
  return load<u64>(changetype<usize>(buf));
}
