// properties: copies properties of the request, the connection and
// the plugin into request headers x-as-prop-<path>, sets a property
// and reads it back, and reports what reading a missing one returns.
// A property path's segments are separated by NUL bytes, as in Envoy
// (the SDK passes the path as given): "request\0path", not
// "request.path"; the header names use dots.
import {
  RootContext, Context, registerRootContext, FilterHeadersStatusValues, stream_context,
} from "@solo-io/proxy-runtime";
import { get_property, set_property, get_current_time_nanoseconds } from "@solo-io/proxy-runtime/runtime";
import { proxy_get_property } from "@solo-io/proxy-runtime/imports";
import { Out, utf8 } from "./util";

const STRINGS: string[] = [
  "request\0url_path", "request\0method", "request\0scheme", "request\0protocol",
  "request\0host", "request\0headers\0x-probe", "source\0address", "destination\0address",
  "plugin_name", "plugin_root_id", "plugin_vm_id", "node\0id", "cluster_name",
];
// Integers and timestamps come as 8 little-endian bytes.
const NUMBERS: string[] = ["source\0port", "request\0time"];

function header(path: string): string {
  return "x-as-prop-" + path.replaceAll("\0", ".");
}

// prop reads a property as a string, or an integer, or says which
// status reading it returned.
function prop(path: string, integer: bool): string {
  const p = String.UTF8.encode(path);
  const out = new Out();
  const res = proxy_get_property(changetype<usize>(p), p.byteLength, out.ptrPtr(), out.sizePtr());
  const b = out.take();
  if (res != 0) {
    return "status " + res.toString();
  }
  if (!integer) {
    return utf8(b);
  }
  return b.byteLength == 8 ? load<u64>(changetype<usize>(b)).toString() : "size " + b.byteLength.toString();
}

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
    // The SDK's get_property aborts on anything but OK.
    req.add("x-as-prop-request.path", utf8(get_property("request\0path")));
    for (let i = 0; i < STRINGS.length; i++) {
      req.add(header(STRINGS[i]), prop(STRINGS[i], false));
    }
    for (let i = 0; i < NUMBERS.length; i++) {
      req.add(header(NUMBERS[i]), prop(NUMBERS[i], true));
    }
    set_property("as.custom", String.UTF8.encode("kept"));
    req.add("x-as-prop-as.custom", utf8(get_property("as.custom")));
    req.add("x-as-prop-missing", prop("no.such.property", false));
    req.add("x-as-now", get_current_time_nanoseconds().toString());
    return FilterHeadersStatusValues.Continue;
  }
}

registerRootContext((context_id: u32) => { return new PropertiesRoot(context_id); }, "properties");
