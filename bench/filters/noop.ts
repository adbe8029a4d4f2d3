// Baseline for the filter benchmarks: a proxy-runtime filter that does nothing per request, so its
// cost is the host's and the SDK's own per-stream overhead — the floor the real filter is measured against.
export * from "@solo-io/proxy-runtime/proxy";
import { Context, RootContext, registerRootContext } from "@solo-io/proxy-runtime";

class NoopRoot extends RootContext {
  createContext(context_id: u32): Context {
    return new Context(context_id, this);
  }
}

registerRootContext((context_id: u32) => {
  return new NoopRoot(context_id);
}, "noop");
