// headers: adds, replaces and removes request and response headers,
// reads single values and all pairs, and sets all response pairs back.
import {
  RootContext, Context, registerRootContext, FilterHeadersStatusValues, stream_context, HeaderPair,
} from "@solo-io/proxy-runtime";
import { HeaderMapTypeValues } from "@solo-io/proxy-runtime/runtime";
import { utf8, setPairs } from "./util";

class HeadersRoot extends RootContext {
  createContext(context_id: u32): Context {
    return new HeadersFilter(context_id, this);
  }
}

class HeadersFilter extends Context {
  constructor(context_id: u32, root_context: HeadersRoot) {
    super(context_id, root_context);
  }

  onRequestHeaders(a: u32, end_of_stream: bool): FilterHeadersStatusValues {
    const req = stream_context.headers.request;
    req.add("x-as-added", "added");
    req.replace("x-as-replaced", "new");
    req.remove("x-as-removed");
    req.add("x-as-path", req.get(":path"));
    req.add("x-as-method", req.get(":method"));
    const pairs = req.get_headers();
    let client = "";
    for (let i = 0; i < pairs.length; i++) {
      if (utf8(pairs[i].key) == "x-client") {
        client += utf8(pairs[i].value) + ";";
      }
    }
    req.add("x-as-client-values", client);
    return FilterHeadersStatusValues.Continue;
  }

  onResponseHeaders(a: u32, end_of_stream: bool): FilterHeadersStatusValues {
    const resp = stream_context.headers.response;
    resp.add("x-as-response", "hello");
    resp.replace("x-from-backend", "rewritten");
    resp.remove("x-drop");
    resp.add("x-as-status", resp.get(":status"));
    const pairs = resp.get_headers();
    pairs.push(new HeaderPair(String.UTF8.encode("x-as-pairs"), String.UTF8.encode(pairs.length.toString())));
    const res = setPairs(HeaderMapTypeValues.ResponseHeaders, pairs);
    resp.add("x-as-set-pairs", res.toString());
    return FilterHeadersStatusValues.Continue;
  }
}

registerRootContext((context_id: u32) => { return new HeadersRoot(context_id); }, "headers");
