// MESH_QUANTILE, MESH_SKETCH_MERGE and the sketch merge both rest on, written once in plain JavaScript.
//
// This file is deliberately not a module: it only declares functions, so the very same text can be
//  - evaluated by shared/quantile.ts in Node (DuckDB scalar UDFs, the collector's rollup), and
//  - pasted as the body of a Snowflake JavaScript UDF followed by `return meshQuantile(SKETCHES, Q);`
//    or `return meshSketchMergeJson(SKETCHES);` (Snowflake exposes the arguments as upper-case
//    variables and runs the body as a function).
// Keep it to ES5-level syntax that both engines accept, and never reference anything outside the file.
//
// Sketch JSON (docs/schema.md): {"s": scale, "z": zero count, "o": index of the first bucket, "c": [entries]}.
// Bucket i holds values v with base^i < v <= base^(i+1), base = 2^(2^-s); 0 goes to the zero count.
// Entries walk the buckets from o upward: n >= 0 is the count of the next bucket, n < 0 skips -n empty
// buckets. Writers emit a skip for every run of empty buckets, so a sketch costs space per non-empty
// bucket, not per bucket it spans; rows written before skips existed (zeros only) read the same way.

/** Parses one sketch given as JSON text or as an already-parsed object; null/undefined stay null. */
function meshSketchParse(x) {
  if (x === null || x === undefined) return null;
  var o = typeof x === "string" ? JSON.parse(x) : x;
  if (typeof o.s !== "number" || typeof o.z !== "number" || typeof o.o !== "number" || !(o.c instanceof Array)) {
    throw new Error("not a latency sketch (expected {s,z,o,c})");
  }
  return o;
}

/**
 * Appends the non-empty buckets of parsed sketch `sk`, brought down to `scale` (each step down maps
 * bucket i to floor(i / 2), which keeps the (base^i, base^(i+1)] bounds nested), to `index`/`count`.
 */
function meshSketchBuckets(sk, scale, index, count) {
  var div = Math.pow(2, sk.s - scale);
  var c = sk.c;
  var at = sk.o;
  for (var b = 0; b < c.length; b++) {
    var v = c[b];
    if (v < 0) {
      at -= v;
      continue;
    }
    if (v > 0) {
      index.push(div === 1 ? at : Math.floor(at / div));
      count.push(v);
    }
    at++;
  }
}

/** The stored form of non-empty buckets given in increasing index order, one entry per bucket. */
function meshSketchFromBuckets(scale, zero, index, count) {
  var c = [];
  var next = 0;
  for (var b = 0; b < index.length; b++) {
    if (b > 0 && index[b] > next) c.push(next - index[b]);
    c.push(count[b]);
    next = index[b] + 1;
  }
  return { s: scale, z: zero, o: index.length > 0 ? index[0] : 0, c: c };
}

/**
 * Merges sketches exactly: every input is brought down to the smallest scale among them, then counts
 * add bucket-wise. Work and memory follow the number of non-empty buckets, never the span between them.
 * Returns a new sketch in the stored form, or null when there is no sketch at all.
 */
function meshSketchMerge(sketches) {
  var parsed = [];
  var scale = Infinity;
  for (var k = 0; k < sketches.length; k++) {
    var p = meshSketchParse(sketches[k]);
    if (p === null) continue;
    parsed.push(p);
    if (p.s < scale) scale = p.s;
  }
  if (parsed.length === 0) return null;
  var zero = 0;
  var index = [];
  var count = [];
  var sorted = true;
  for (k = 0; k < parsed.length; k++) {
    zero += parsed[k].z;
    var before = index.length;
    meshSketchBuckets(parsed[k], scale, index, count);
    if (before > 0 && before < index.length && index[before] <= index[before - 1]) sorted = false;
  }
  if (!sorted) {
    // Each input lists its buckets in order; put them in order overall (stable ties are irrelevant, counts add).
    var order = [];
    for (var i = 0; i < index.length; i++) order.push(i);
    order.sort(function (a, b) {
      return index[a] - index[b];
    });
    var si = [];
    var sc = [];
    for (i = 0; i < order.length; i++) {
      si.push(index[order[i]]);
      sc.push(count[order[i]]);
    }
    index = si;
    count = sc;
  }
  // Buckets sharing an index (from different inputs, or a downscale) add up.
  var n = 0;
  for (i = 0; i < index.length; i++) {
    if (n > 0 && index[n - 1] === index[i]) count[n - 1] += count[i];
    else {
      index[n] = index[i];
      count[n] = count[i];
      n++;
    }
  }
  index.length = n;
  count.length = n;
  return meshSketchFromBuckets(scale, zero, index, count);
}

/**
 * Adds sketch `sk` into `acc` in place (acc must be a parsed sketch its caller owns) and returns acc:
 * the same result as meshSketchMerge([acc, sk]), kept in acc so a long-running accumulator does not keep
 * the sketches it absorbed alive.
 */
function meshSketchAddInto(acc, sk) {
  var p = meshSketchParse(sk);
  if (p === null) return acc;
  var m = meshSketchMerge([acc, p]);
  acc.s = m.s;
  acc.z = m.z;
  acc.o = m.o;
  acc.c = m.c;
  return acc;
}

/**
 * MESH_SKETCH_MERGE: the exact merge of the sketches as JSON text in the stored form {s,z,o,c}, so the
 * hourly rollup keeps one sketch per (hour, series) whose quantiles equal those of its minute sketches.
 * Null when given no sketch.
 */
function meshSketchMergeJson(sketches) {
  if (sketches === null || sketches === undefined) return null;
  var m = meshSketchMerge(sketches);
  return m === null ? null : JSON.stringify(m);
}

/**
 * The nearest rank max(1, ceil(q * n)) of the q-quantile among n values, with q taken as the decimal it
 * prints as (String(q): 0.55 is 55/100) and the product computed exactly. In floating point
 * 0.55 * 100 = 55.000000000000014, whose ceiling is one rank (one bucket) too high; the same happens for
 * many q and n. The decimal's digits are multiplied by n in base-10^7 limbs, so every partial product
 * and carry stays far below 2^53; n is a whole count.
 */
function meshRank(q, n) {
  var text = String(q);
  var e = text.indexOf("e");
  var mantissa = e < 0 ? text : text.slice(0, e);
  var dot = mantissa.indexOf(".");
  // q = digits / 10^places
  var places = (dot < 0 ? 0 : mantissa.length - dot - 1) - (e < 0 ? 0 : parseInt(text.slice(e + 1), 10));
  var digits = mantissa.replace(".", "");
  var LIMB = 10000000;
  var a = [];
  for (var end = digits.length; end > 0; end -= 7) a.push(parseInt(digits.slice(Math.max(0, end - 7), end), 10));
  var b = [];
  for (var m = n; m > 0; m = Math.floor(m / LIMB)) b.push(m % LIMB);
  var p = [];
  for (var k = 0; k < a.length + b.length; k++) p.push(0);
  for (var i = 0; i < a.length; i++) {
    var carry = 0;
    for (var j = 0; j < b.length; j++) {
      var t = p[i + j] + a[i] * b[j] + carry;
      carry = Math.floor(t / LIMB);
      p[i + j] = t - carry * LIMB;
    }
    p[i + b.length] += carry;
  }
  var product = "";
  for (k = p.length - 1; k >= 0; k--) product += (k === p.length - 1 ? String(p[k]) : String(LIMB + p[k]).slice(1));
  var whole = places >= product.length ? 0 : Number(product.slice(0, product.length - places));
  var fraction = places <= 0 ? "" : product.slice(Math.max(0, product.length - places));
  var rank = /[1-9]/.test(fraction) ? whole + 1 : whole;
  return rank < 1 ? 1 : rank;
}

/**
 * The value reported for bucket i at `scale`, (base^i, base^(i+1)]: 2 * base^(i+1) / (1 + base), the
 * DDSketch estimate, whose relative error for any value in the bucket is at most (base - 1)/(base + 1)
 * (attained at both edges; the bucket midpoint's is (base - 1)/2, larger). base^(i+1) is written as
 * 2^((i+1) / 2^scale) so that powers of two come out exact.
 */
function meshBucketValue(i, scale) {
  var base = Math.pow(2, Math.pow(2, -scale));
  return (2 * Math.pow(2, (i + 1) / Math.pow(2, scale))) / (1 + base);
}

/**
 * The q-quantile, in microseconds, of the merged sketches: the value of nearest rank meshRank(q, n),
 * answered with meshBucketValue of the bucket holding that rank (0 for the zero count). Returns null
 * when the sketches hold no value or q is null; throws on q outside [0, 1].
 */
function meshQuantile(sketches, q) {
  if (q === null || q === undefined || sketches === null || sketches === undefined) return null;
  if (!(q >= 0 && q <= 1)) throw new Error("MESH_QUANTILE: q must be within [0, 1], got " + q);
  var m = meshSketchMerge(sketches);
  if (m === null) return null;
  var n = m.z;
  for (var b = 0; b < m.c.length; b++) if (m.c[b] > 0) n += m.c[b];
  if (n === 0) return null;
  var rank = meshRank(q, n);
  if (rank <= m.z) return 0;
  var seen = m.z;
  var at = m.o;
  for (b = 0; b < m.c.length; b++) {
    var v = m.c[b];
    if (v < 0) {
      at -= v;
      continue;
    }
    seen += v;
    if (seen >= rank) return meshBucketValue(at, m.s);
    at++;
  }
  return null;
}
