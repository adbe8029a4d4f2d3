// meshlook's proxy-wasm filter: counts requests per identity in place and ships compact summaries.
export * from "./sdk/entry";
import { Root, setRootFactory } from "./sdk/exports";
import { MeshlookRoot } from "./root";

setRootFactory((id: u32): Root => new MeshlookRoot(id));
