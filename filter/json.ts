// A small strict JSON parser for the plugin configuration. It reports the first error as a message
// instead of throwing: an exception in AssemblyScript aborts the VM, and a bad configuration must
// only make configure fail. (The npm package assemblyscript-json compiles with this toolchain but
// asserts on malformed input, which would abort.)

export const enum JsonKind {
  Null,
  Bool,
  Number,
  String,
  Array,
  Object,
}

export class JsonValue {
  kind: JsonKind = JsonKind.Null;
  bool: bool = false;
  num: f64 = 0;
  str: string = "";
  items: Array<JsonValue> = [];
  keys: Array<string> = [];

  /** The member named `key` of an object, or null. */
  get(key: string): JsonValue | null {
    for (let i = 0; i < this.keys.length; i++) if (this.keys[i] == key) return this.items[i];
    return null;
  }

  /** A short rendering for error messages. */
  describe(): string {
    switch (this.kind) {
      case JsonKind.Null:
        return "null";
      case JsonKind.Bool: {
        if (this.bool) return "true";
        return "false";
      }
      case JsonKind.Number: {
        // Integers as written (f64's toString would print 5 as "5.0").
        if (this.num == Math.floor(this.num) && Math.abs(this.num) < 1e15) return (<i64>this.num).toString();
        return this.num.toString();
      }
      case JsonKind.String: {
        if (this.str.length > 40) return "a string";
        return '"' + this.str + '"';
      }
      case JsonKind.Array:
        return "an array";
      default:
        return "an object";
    }
  }
}

const MAX_DEPTH = 16;

export class JsonParser {
  error: string = "";
  private pos: i32 = 0;

  constructor(
    private ptr: usize,
    private len: i32,
  ) {}

  /** Parses the whole input as one value; null (and `error` set) when it is not valid JSON. */
  parse(): JsonValue | null {
    let v = this.value(0);
    if (v === null) return null;
    this.ws();
    if (this.pos < this.len) return this.fail("unexpected data after the JSON value");
    return v;
  }

  private fail(msg: string): JsonValue | null {
    if (this.error.length == 0) this.error = msg + " at byte " + this.pos.toString();
    return null;
  }

  private peek(): i32 {
    return this.pos < this.len ? <i32>load<u8>(this.ptr + this.pos) : -1;
  }

  private ws(): void {
    while (this.pos < this.len) {
      let c = load<u8>(this.ptr + this.pos);
      if (c != 0x20 && c != 0x09 && c != 0x0a && c != 0x0d) break;
      this.pos++;
    }
  }

  private literal(word: string): bool {
    let n = word.length;
    if (this.pos + n > this.len) return false;
    for (let i = 0; i < n; i++) if (<i32>load<u8>(this.ptr + this.pos + i) != word.charCodeAt(i)) return false;
    this.pos += n;
    return true;
  }

  private value(depth: i32): JsonValue | null {
    if (depth > MAX_DEPTH) return this.fail("nesting deeper than " + MAX_DEPTH.toString());
    this.ws();
    let c = this.peek();
    let v = new JsonValue();
    if (c == 0x7b) return this.object(depth);
    if (c == 0x5b) return this.array(depth);
    if (c == 0x22) {
      let s = this.string();
      if (s === null) return null;
      v.kind = JsonKind.String;
      v.str = s;
      return v;
    }
    if (c == 0x2d || (c >= 0x30 && c <= 0x39)) return this.number();
    if (this.literal("true")) {
      v.kind = JsonKind.Bool;
      v.bool = true;
      return v;
    }
    if (this.literal("false")) {
      v.kind = JsonKind.Bool;
      return v;
    }
    if (this.literal("null")) return v;
    if (c < 0) return this.fail("unexpected end of input");
    return this.fail("unexpected character");
  }

  private object(depth: i32): JsonValue | null {
    let v = new JsonValue();
    v.kind = JsonKind.Object;
    this.pos++;
    this.ws();
    if (this.peek() == 0x7d) {
      this.pos++;
      return v;
    }
    while (true) {
      this.ws();
      if (this.peek() != 0x22) return this.fail("expected a member name");
      let key = this.string();
      if (key === null) return null;
      if (v.get(key) !== null) return this.fail('duplicate member "' + key + '"');
      this.ws();
      if (this.peek() != 0x3a) return this.fail("expected ':'");
      this.pos++;
      let item = this.value(depth + 1);
      if (item === null) return null;
      v.keys.push(key);
      v.items.push(item);
      this.ws();
      let c = this.peek();
      this.pos++;
      if (c == 0x7d) return v;
      if (c != 0x2c) {
        this.pos--;
        return this.fail("expected ',' or '}'");
      }
    }
    return null;
  }

  private array(depth: i32): JsonValue | null {
    let v = new JsonValue();
    v.kind = JsonKind.Array;
    this.pos++;
    this.ws();
    if (this.peek() == 0x5d) {
      this.pos++;
      return v;
    }
    while (true) {
      let item = this.value(depth + 1);
      if (item === null) return null;
      v.items.push(item);
      this.ws();
      let c = this.peek();
      this.pos++;
      if (c == 0x5d) return v;
      if (c != 0x2c) {
        this.pos--;
        return this.fail("expected ',' or ']'");
      }
    }
    return null;
  }

  private number(): JsonValue | null {
    let start = this.pos;
    if (this.peek() == 0x2d) this.pos++;
    let c = this.peek();
    if (c == 0x30) this.pos++;
    else if (c >= 0x31 && c <= 0x39) this.digits();
    else return this.fail("malformed number");
    if (this.peek() == 0x2e) {
      this.pos++;
      if (this.digits() == 0) return this.fail("malformed number");
    }
    c = this.peek();
    if (c == 0x65 || c == 0x45) {
      this.pos++;
      c = this.peek();
      if (c == 0x2b || c == 0x2d) this.pos++;
      if (this.digits() == 0) return this.fail("malformed number");
    }
    let v = new JsonValue();
    v.kind = JsonKind.Number;
    v.num = parseFloat(String.UTF8.decodeUnsafe(this.ptr + start, this.pos - start));
    return v;
  }

  private digits(): i32 {
    let n = 0;
    while (true) {
      let c = this.peek();
      if (c < 0x30 || c > 0x39) return n;
      this.pos++;
      n++;
    }
    return n;
  }

  private string(): string | null {
    this.pos++; // opening quote
    let out = "";
    let runStart = this.pos;
    while (true) {
      let c = this.peek();
      if (c < 0) {
        this.fail("unterminated string");
        return null;
      }
      if (c == 0x22) break;
      if (c < 0x20) {
        this.fail("control character in string");
        return null;
      }
      if (c == 0x5c) {
        out += String.UTF8.decodeUnsafe(this.ptr + runStart, this.pos - runStart);
        this.pos++;
        let e = this.peek();
        this.pos++;
        if (e == 0x22) out += '"';
        else if (e == 0x5c) out += "\\";
        else if (e == 0x2f) out += "/";
        else if (e == 0x62) out += "\b";
        else if (e == 0x66) out += "\f";
        else if (e == 0x6e) out += "\n";
        else if (e == 0x72) out += "\r";
        else if (e == 0x74) out += "\t";
        else if (e == 0x75) {
          let unit = this.hex4();
          if (unit < 0) {
            this.fail("malformed \\u escape");
            return null;
          }
          out += String.fromCharCode(unit);
        } else {
          this.pos--;
          this.fail("unknown escape");
          return null;
        }
        runStart = this.pos;
        continue;
      }
      this.pos++;
    }
    out += String.UTF8.decodeUnsafe(this.ptr + runStart, this.pos - runStart);
    this.pos++; // closing quote
    return out;
  }

  private hex4(): i32 {
    if (this.pos + 4 > this.len) return -1;
    let v = 0;
    for (let i = 0; i < 4; i++) {
      let c = <i32>load<u8>(this.ptr + this.pos + i);
      let d = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : c >= 0x41 && c <= 0x46 ? c - 0x37 : -1;
      if (d < 0) return -1;
      v = (v << 4) | d;
    }
    this.pos += 4;
    return v;
  }
}
