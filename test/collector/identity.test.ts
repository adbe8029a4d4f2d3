// Caller identity: the x-forwarded-client-cert forms Envoy writes (conn_manager_utility.cc
// mutateXfccRequestHeader: `By=…;Hash=…;Subject="…";URI=…;DNS=…`, elements appended after a comma), and
// how a caller's namespaces follow from the header and the token's scope.
import { describe, expect, it } from "vitest";
import { callerOf, spiffeParts, xfccPeer } from "../../collector/identity.ts";

const own = (uri: string, subject = "") => `By=spiffe://cluster.local/ns/meshlook/sa/meshlook-collector;Hash=6b0e;Subject="${subject}";URI=${uri};DNS=reviews.shop`;

describe("xfccPeer", () => {
  it("reads the URI of the last element: the one the collector's own sidecar appended", () => {
    expect(xfccPeer(own("spiffe://cluster.local/ns/shop/sa/reviews"))).toBe("spiffe://cluster.local/ns/shop/sa/reviews");
    const forged = `By=x;URI=spiffe://cluster.local/ns/payments/sa/payments`;
    expect(xfccPeer(`${forged},${own("spiffe://cluster.local/ns/shop/sa/reviews")}`)).toBe("spiffe://cluster.local/ns/shop/sa/reviews");
  });

  it("is not fooled by commas, semicolons or a URI= inside a quoted subject", () => {
    const subject = 'CN=a\\"b,URI=spiffe://cluster.local/ns/payments/sa/x;O=evil';
    expect(xfccPeer(`By=x;URI=spiffe://cluster.local/ns/payments/sa/x,${own("spiffe://cluster.local/ns/shop/sa/reviews", subject)}`)).toBe(
      "spiffe://cluster.local/ns/shop/sa/reviews",
    );
  });

  it("finds the sidecar's element from the end, whatever quotes or backslashes the client's part holds", () => {
    // A left-to-right quote scan treats the client's unbalanced quote as opening a Subject, swallows
    // the comma Envoy wrote, and reads the client's URI.
    const sidecar = own("spiffe://cluster.local/ns/shop/sa/reviews");
    for (const client of ['URI=spiffe://cluster.local/ns/payments/sa/payments;Subject="', 'URI=spiffe://cluster.local/ns/payments/sa/payments;Subject="a\\"', '"', "x=\\"]) {
      expect(xfccPeer(`${client},${sidecar}`)).toBe("spiffe://cluster.local/ns/shop/sa/reviews");
    }
    // A Subject that ends in an escaped backslash still closes its quote.
    expect(xfccPeer(`"x,${own("spiffe://cluster.local/ns/shop/sa/reviews", "CN=a\\\\")}`)).toBe("spiffe://cluster.local/ns/shop/sa/reviews");
  });

  it("has no peer when the sidecar's element carries several URI SANs (an Istio certificate has one)", () => {
    expect(xfccPeer(`By=y;Hash=1;Subject="";URI=spiffe://cluster.local/ns/shop/sa/a;URI=spiffe://cluster.local/ns/payments/sa/b`)).toBeUndefined();
  });

  it("has no peer when the last element has no URI, or an empty one, or there is no header", () => {
    expect(xfccPeer(`By=x;URI=spiffe://cluster.local/ns/shop/sa/a,By=y;Hash=1`)).toBeUndefined();
    expect(xfccPeer(`By=y;Hash=1;Subject="";URI=`)).toBeUndefined();
    expect(xfccPeer(undefined)).toBeUndefined();
  });
});

describe("spiffeParts", () => {
  it("takes namespace and service account from Istio's SPIFFE form only", () => {
    expect(spiffeParts("spiffe://cluster.local/ns/shop/sa/reviews")).toEqual({ namespace: "shop", serviceAccount: "reviews" });
    expect(spiffeParts("spiffe://cluster.local/ns/shop/sa/reviews/extra")).toBeUndefined();
    expect(spiffeParts("spiffe://cluster.local/workload/x")).toBeUndefined();
  });
});

describe("callerOf", () => {
  const xfcc = own("spiffe://cluster.local/ns/shop/sa/reviews");
  it("binds a trusted XFCC caller to its own namespace, and refuses one without a SPIFFE ID", () => {
    expect(callerOf({ xfcc, trustXfcc: true, address: "::1" })).toEqual({
      principal: "spiffe://cluster.local/ns/shop/sa/reviews",
      namespaces: new Set(["shop"]),
      key: "spiffe://cluster.local/ns/shop/sa/reviews",
    });
    expect(callerOf({ trustXfcc: true, address: "::1" })).toBe("no_identity");
    expect(callerOf({ xfcc: own("spiffe://other/x"), trustXfcc: true, address: "::1" })).toBe("no_identity");
  });

  it("lets a scoped token narrow, never widen, what an XFCC caller may write", () => {
    const inScope = callerOf({ xfcc, trustXfcc: true, grant: { label: "ab", namespaces: new Set(["shop", "orders"]) }, address: "::1" });
    expect(inScope).toMatchObject({ namespaces: new Set(["shop"]) });
    const outOfScope = callerOf({ xfcc, trustXfcc: true, grant: { label: "ab", namespaces: new Set(["orders"]) }, address: "::1" });
    expect(outOfScope).toMatchObject({ namespaces: new Set() });
  });

  it("ignores XFCC unless told to trust it; then a token's scope is the only binding", () => {
    expect(callerOf({ xfcc, trustXfcc: false, grant: { label: "ab" }, address: "::1" })).toEqual({ namespaces: undefined, key: "token:ab" });
    expect(callerOf({ xfcc, trustXfcc: false, grant: { label: "ab", namespaces: new Set(["shop"]) }, address: "::1" })).toMatchObject({ namespaces: new Set(["shop"]) });
  });
});
