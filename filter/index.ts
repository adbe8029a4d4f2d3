// meshlook's proxy-wasm filter: counts requests per identity in place and ships compact summaries.
export {
  proxy_abi_version_0_2_0,
  proxy_on_context_create,
  proxy_on_vm_start,
  proxy_validate_configuration,
  proxy_on_configure,
  proxy_on_tick,
  proxy_on_http_call_response,
  proxy_on_log,
  proxy_on_done,
  proxy_on_delete,
  malloc,
} from "./sdk/exports";
import { Root, setRootFactory } from "./sdk/exports";
import { MeshlookRoot } from "./root";

setRootFactory((id: u32): Root => new MeshlookRoot(id));
