// properties: copies properties of the request, the connection and
// the plugin into request headers x-as-prop-<path>, sets a property
// and reads it back, and reports what reading a missing one returns.
import {
  RootContext, Context, registerRootContext, FilterHeadersStatusValues, stream_context,
} from "@solo-io/proxy-runtime";
import { get_property, set_property, get_current_time_nanoseconds } from "@solo-io/proxy-runtime/runtime";
import { proxy_get_property } from "@solo-io/proxy-runtime/imports";
import { Out, utf8 } from "./util";

const STRINGS: string[] = [
  "request.path", "request.url_path", "request.method", "request.scheme", "request.protocol",
  "request.host", "request.headers.x-probe", "source.address", "destination.address",
  "plugin_name", "plugin_root_id", "plugin_vm_id", "node.id", "cluster_name",
];
// Integers and timestamps come as 8 little-endian bytes.
const NUMBERS: string[] = ["source.port", "request.time"];

class PropertiesRoot extends RootContext {
  createContext(context_id: u32): Context {
    return new PropertiesFilter(context_id, this);
  }
}

class PropertiesFilter extends Context {
  constructor(context_id: u32, root_context: PropertiesRoot) {
    super(context_id, root_context);
  }

  onRequestHeaders(a: u32, end_of_stream: bool): FilterHeadersStatusValues {
    const req = stream_context.headers.request;
    for (let i = 0; i < STRINGS.length; i++) {
      req.add("x-as-prop-" + STRINGS[i], utf8(get_property(STRINGS[i])));
    }
    for (let i = 0; i < NUMBERS.length; i++) {
      const b = get_property(NUMBERS[i]);
      req.add("x-as-prop-" + NUMBERS[i], b.byteLength == 8 ? load<u64>(changetype<usize>(b)).toString() : "size " + b.byteLength.toString());
    }
    set_property("as.custom", String.UTF8.encode("kept"));
    req.add("x-as-prop-as.custom", utf8(get_property("as.custom")));
    // The SDK's get_property aborts on anything but Ok.
    const missing = String.UTF8.encode("no.such.property");
    const out = new Out();
    const res = proxy_get_property(changetype<usize>(missing), missing.byteLength, out.ptrPtr(), out.sizePtr());
    req.add("x-as-prop-missing", res.toString());
    req.add("x-as-now", get_current_time_nanoseconds().toString());
    return FilterHeadersStatusValues.Continue;
  }
}

registerRootContext((context_id: u32) => { return new PropertiesRoot(context_id); }, "properties");
