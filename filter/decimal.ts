// Header values that carry a number (":status", "retry-after", "grpc-status") as plain ASCII digits.

/** The unsigned decimal of `len` bytes at `ptr`; -1 when empty, longer than `maxDigits` or not all digits. */
export function parseDecimal(ptr: usize, len: i32, maxDigits: i32): i64 {
  if (len <= 0 || len > maxDigits) return -1;
  let v: i64 = 0;
  for (let i = 0; i < len; i++) {
    let d = <i64>load<u8>(ptr + i) - 0x30;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v;
}
