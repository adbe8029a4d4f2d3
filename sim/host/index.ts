// The proxy-wasm host that plays Envoy's part in the mesh simulator. Usage and scope: docs/host.md.
export { createSidecar, compileModule, Sidecar } from "./sidecar.ts";
export type { SidecarOptions, StreamInput, StreamResult, TrapRecord, CalloutRecord, FailStrategy, ConfigRejection } from "./sidecar.ts";
export { ManualClock, RealClock } from "./clock.ts";
export type { Clock, Timer } from "./clock.ts";
export { WasmLoadError, checkModule, SUPPORTED_ABI_VERSIONS } from "./abi.ts";
export type { AbiVersion } from "./abi.ts";
export { HeaderMap } from "./headers.ts";
export type { HeaderInput } from "./headers.ts";
export { ATTRIBUTE_KINDS } from "./properties.ts";
export type { StreamAttributes } from "./properties.ts";
export { peerInfo, peerFieldObject, flatNodePeer, jwtAuthnMetadata, metadataMessage, RESPONSE_FLAGS, responseFlags } from "./istio.ts";
export type { PeerInfo } from "./istio.ts";
export {
  str,
  bytes,
  int,
  uint,
  double,
  bool,
  duration,
  timestamp,
  Typed,
  Message,
  FieldObject,
  encodePairs,
  decodePairs,
  serialize,
} from "./values.ts";
export type { Attr, Kind, NodeInfo } from "./values.ts";
export type { LogEntry, LogLevel, Metric, MetricType } from "./shared.ts";
