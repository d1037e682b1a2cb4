// shared: counts requests in shared data with compare-and-swap, so
// every instance of the VM id adds to one count, and shows the count
// and what a write with a stale CAS returns.
import {
  RootContext, Context, registerRootContext, FilterHeadersStatusValues, stream_context, WasmResultValues,
} from "@solo-io/proxy-runtime";
import { proxy_get_shared_data, proxy_set_shared_data } from "@solo-io/proxy-runtime/imports";
import { Out, Word, utf8 } from "./util";

const KEY = String.UTF8.encode("as_shared_count");

class Read {
  result: u32 = 0;
  value: string = "";
  cas: u32 = 0;
}

function read(): Read {
  const out = new Out();
  const cas = new Word();
  const r = new Read();
  r.result = proxy_get_shared_data(changetype<usize>(KEY), KEY.byteLength, out.ptrPtr(), out.sizePtr(), cas.ptr());
  r.value = utf8(out.take());
  r.cas = cas.value;
  return r;
}

function write(value: string, cas: u32): u32 {
  const b = String.UTF8.encode(value);
  return proxy_set_shared_data(changetype<usize>(KEY), KEY.byteLength, changetype<usize>(b), b.byteLength, cas);
}

class SharedRoot extends RootContext {
  createContext(context_id: u32): Context {
    return new SharedFilter(context_id, this);
  }
}

class SharedFilter extends Context {
  count: string = "";
  stale: u32 = 0;

  constructor(context_id: u32, root_context: SharedRoot) {
    super(context_id, root_context);
  }

  onRequestHeaders(a: u32, end_of_stream: bool): FilterHeadersStatusValues {
    for (;;) {
      const r = read();
      let n: i32 = 0;
      if (r.result == WasmResultValues.Ok) {
        n = I32.parseInt(r.value);
      }
      const next = (n + 1).toString();
      // A first write has no CAS to compare with.
      const res = write(next, r.result == WasmResultValues.Ok ? r.cas : 0);
      if (res == WasmResultValues.Ok) {
        this.count = next;
        // The CAS this read saw is now out of date.
        this.stale = r.result == WasmResultValues.Ok ? write("stale", r.cas) : WasmResultValues.CasMismatch;
        break;
      }
      if (res != WasmResultValues.CasMismatch) {
        this.count = "error " + res.toString();
        break;
      }
    }
    return FilterHeadersStatusValues.Continue;
  }

  onResponseHeaders(a: u32, end_of_stream: bool): FilterHeadersStatusValues {
    stream_context.headers.response.add("x-as-shared-count", this.count);
    stream_context.headers.response.add("x-as-stale-cas", this.stale.toString());
    return FilterHeadersStatusValues.Continue;
  }
}

registerRootContext((context_id: u32) => { return new SharedRoot(context_id); }, "shared");
