// Caller identity: who sent a summary, and whether the summary only speaks for that caller.
//
// Behind the collector's own Istio sidecar, the caller is the mTLS peer the sidecar verified. Istio
// configures every sidecar inbound HTTP connection manager with forward_client_cert_details from the
// pod's ProxyConfig `proxyHeaders.forwardedClientCert`, APPEND_FORWARD when unset, and
// set_current_client_cert_details {subject, uri, dns} (istio/istio pilot/pkg/networking/core/
// listener_inbound.go buildSidecarInboundHTTPOpts, pilot/pkg/networking/util GetProxyHeadersFromProxyConfig);
// the manifests set SANITIZE_SET. Envoy removes x-forwarded-client-cert when the downstream connection is
// not mutual TLS; otherwise it writes one element `By=<own URI SAN>;Hash=<peer cert SHA-256>;Subject="…";
// URI=<peer URI SAN>[;DNS=…]`, alone (SANITIZE_SET) or after a comma following whatever the client sent
// (APPEND_FORWARD), and it escapes nothing but the Subject (envoy source/common/http/
// conn_manager_utility.cc, ConnectionManagerUtility::mutateXfccRequestHeader). So only the LAST element
// is the sidecar's word, and it must be found from the end: the client's part is arbitrary text. The
// header is trusted only when MESHLOOK_TRUST_XFCC says a sidecar sits in front (otherwise any client could
// write it); FORWARD_ONLY and ALWAYS_FORWARD_ONLY pass the client's header on unchanged and must not be
// configured for the collector.
import type { TokenGrant } from "./auth.ts";
import { istioNode, known, localSide, seriesDimensions } from "./rollup.ts";
import type { DecodedSummary } from "./summary.ts";

export interface Caller {
  /** The peer's SPIFFE ID (`spiffe://<trust domain>/ns/<ns>/sa/<sa>`), when XFCC is trusted. */
  principal?: string;
  /** The namespaces the caller may write for: its own (XFCC), or its token's scope; undefined = any. */
  namespaces?: ReadonlySet<string>;
  /** Rate-limit key: the principal, else the token label, else the address. */
  key: string;
}

/** Is the `"` at `i` escaped, i.e. preceded by an odd number of backslashes (RFC 2253 subjects escape `"`)? */
function escaped(s: string, i: number): boolean {
  let n = 0;
  while (i - n - 1 >= 0 && s[i - n - 1] === "\\") n++;
  return n % 2 === 1;
}

/**
 * The element the collector's own sidecar appended: everything after the last comma outside quotes,
 * found scanning from the END. Only the sidecar's bytes lie there, and they are well formed (quotes
 * balanced, commas only inside the quoted Subject), whereas the client's part before them may hold an
 * unbalanced quote that would make a left-to-right scan swallow the separator and read the client's
 * own `URI=` instead.
 */
function lastElement(header: string): string {
  let quoted = false;
  for (let i = header.length - 1; i >= 0; i--) {
    const ch = header[i];
    if (ch === '"' && !escaped(header, i)) quoted = !quoted;
    else if (ch === "," && !quoted) return header.slice(i + 1);
  }
  return header;
}

/** Splits an element Envoy wrote on `;` outside its quoted Subject. */
function pairs(element: string): string[] {
  const out: string[] = [];
  let quoted = false;
  let from = 0;
  for (let i = 0; i < element.length; i++) {
    const ch = element[i];
    if (ch === '"' && !escaped(element, i)) quoted = !quoted;
    else if (ch === ";" && !quoted) {
      out.push(element.slice(from, i));
      from = i + 1;
    }
  }
  out.push(element.slice(from));
  return out;
}

/**
 * The SPIFFE ID of the peer the collector's own sidecar verified: the URI of the last XFCC element.
 * Envoy writes one `URI=` per URI SAN; an Istio workload certificate has exactly one, so none, an empty
 * one or several give no identity rather than a guess.
 */
export function xfccPeer(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const uris = pairs(lastElement(header))
    .map((pair) => pair.split("="))
    .filter(([key]) => key.trim().toLowerCase() === "uri")
    .map(([, ...value]) => value.join("=").trim());
  return uris.length === 1 && uris[0] !== "" ? uris[0] : undefined;
}

/** Namespace and service account of an Istio SPIFFE ID, or undefined for any other form. */
export function spiffeParts(id: string): { namespace: string; serviceAccount: string } | undefined {
  const m = /^spiffe:\/\/[^/]+\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(id);
  return m ? { namespace: m[1], serviceAccount: m[2] } : undefined;
}

/** How a summary claims what it may not; a refusal names the first claim found. */
export interface IdentityMismatch {
  reason: "identity_mismatch";
  message: string;
}

const allowed = (caller: Caller, ns: string | undefined) => caller.namespaces === undefined || (ns !== undefined && caller.namespaces.has(ns));

/**
 * Does the summary speak only for its caller? With a caller bound to namespaces, the producer id must
 * name its pod's namespace (Istio node id form) and that namespace must be the caller's, and every series
 * must be reported from the caller's side: the local namespace (destination_namespace for
 * reporter=destination, source_namespace for reporter=source) within the caller's, and, when the caller's
 * SPIFFE ID is known, the local principal equal to it. What a sidecar may still claim freely is its own
 * traffic: the peers, codes, counts and latencies of its series (docs/security.md).
 */
export function checkIdentity(summary: DecodedSummary, caller: Caller): IdentityMismatch | undefined {
  if (caller.namespaces === undefined) return undefined;
  const refuse = (message: string): IdentityMismatch => ({ reason: "identity_mismatch", message });
  const node = istioNode(summary.producerId);
  if (!node) return refuse("the producer id does not name its pod's namespace (sidecar~<ip>~<pod>.<namespace>~<domain>/…), so it cannot be bound to the caller");
  if (!allowed(caller, node.namespace)) return refuse(`the producer's namespace is not the caller's (${[...caller.namespaces].join(", ")})`);
  const dims = seriesDimensions(summary);
  for (let i = 0; i < dims.count; i++) {
    const local = localSide(dims, i);
    if (!local) return refuse(`series ${i}: reporter must be source or destination`);
    const ns = dims.value(i, local.namespace);
    // The filter writes `unknown` (or the overflow marker) when it does not know a value: no claim made.
    if (known(ns) && !allowed(caller, ns)) return refuse(`series ${i}: reports traffic of another namespace's workload`);
    const principal = dims.value(i, local.principal);
    if (caller.principal !== undefined && known(principal) && principal !== caller.principal) {
      return refuse(`series ${i}: reports traffic of another principal than the caller's`);
    }
  }
  return undefined;
}

/**
 * The caller as the load ledger and the spool record it (collector/ledger.ts): its SPIFFE ID, else its
 * token's namespace scope, else "" (an unscoped token, or no authentication: one caller trusted for all).
 * Not Caller.key: a token's label changes when the token is rotated, and a sidecar's retry must still be
 * recognised after that, on any replica.
 */
export function ledgerIdentity(caller: Caller): string {
  if (caller.principal !== undefined) return caller.principal;
  if (caller.namespaces !== undefined) return `ns:${[...caller.namespaces].sort().join(",")}`;
  return "";
}

/** The caller of a request, from the trusted XFCC header or the token's grant. */
export function callerOf(opts: { xfcc?: string; trustXfcc: boolean; grant?: TokenGrant; address: string }): Caller | "no_identity" {
  if (opts.trustXfcc) {
    const principal = xfccPeer(opts.xfcc);
    const parts = principal === undefined ? undefined : spiffeParts(principal);
    if (!principal || !parts) return "no_identity";
    // A scoped token narrows, never widens, what the principal may write.
    if (opts.grant?.namespaces && !opts.grant.namespaces.has(parts.namespace)) return { principal, namespaces: new Set(), key: principal };
    return { principal, namespaces: new Set([parts.namespace]), key: principal };
  }
  if (opts.grant) return { namespaces: opts.grant.namespaces, key: `token:${opts.grant.label}` };
  return { key: `addr:${opts.address}` };
}
