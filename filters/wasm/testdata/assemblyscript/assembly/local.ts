// local: answers requests under /deny itself, with a body and headers,
// without reaching the upstream.
import {
  RootContext, Context, registerRootContext, FilterHeadersStatusValues, stream_context, HeaderPair,
  GrpcStatusValues, send_local_response,
} from "@solo-io/proxy-runtime";

class LocalRoot extends RootContext {
  createContext(context_id: u32): Context {
    return new LocalFilter(context_id, this);
  }
}

class LocalFilter extends Context {
  constructor(context_id: u32, root_context: LocalRoot) {
    super(context_id, root_context);
  }

  onRequestHeaders(a: u32, end_of_stream: bool): FilterHeadersStatusValues {
    if (!stream_context.headers.request.get(":path").startsWith("/deny")) {
      return FilterHeadersStatusValues.Continue;
    }
    const headers: HeaderPair[] = [
      new HeaderPair(String.UTF8.encode("x-as-local"), String.UTF8.encode("yes")),
      new HeaderPair(String.UTF8.encode("content-type"), String.UTF8.encode("text/plain")),
    ];
    send_local_response(403, "as_denied", String.UTF8.encode("denied by assemblyscript"), headers, GrpcStatusValues.InvalidCode);
    return FilterHeadersStatusValues.StopIteration;
  }
}

registerRootContext((context_id: u32) => { return new LocalRoot(context_id); }, "local");
