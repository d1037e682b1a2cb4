// callout: holds each request while it asks the cluster named by the
// plugin configuration, with the request's x-token as the b query
// parameter; an answer of "allow" lets the request on with x-as-auth,
// anything else is refused with 403, no answer with 503.
import {
  RootContext, Context, registerRootContext, FilterHeadersStatusValues, stream_context, HeaderPair,
  GrpcStatusValues, send_local_response, continue_request, WasmResultValues,
} from "@solo-io/proxy-runtime";
import { BufferTypeValues, get_buffer_bytes } from "@solo-io/proxy-runtime/runtime";
import { utf8 } from "./util";

class CalloutRoot extends RootContext {
  createContext(context_id: u32): Context {
    return new CalloutFilter(context_id, this);
  }
}

function pair(k: string, v: string): HeaderPair {
  return new HeaderPair(String.UTF8.encode(k), String.UTF8.encode(v));
}

function deny(code: u32, body: string): void {
  send_local_response(code, "as_callout", String.UTF8.encode(body), [pair("x-as-callout", "denied")], GrpcStatusValues.InvalidCode);
}

function onAnswer(origin: Context, headers: u32, body_size: usize, trailers: u32): void {
  if (headers == 0) {
    deny(503, "auth service failed");
    return;
  }
  const status = stream_context.headers.http_callback.get(":status");
  const body = utf8(get_buffer_bytes(BufferTypeValues.HttpCallResponseBody, 0, body_size as u32));
  if (status != "200" || body != "allow") {
    deny(403, "auth said " + status + " " + body);
    return;
  }
  stream_context.headers.request.add("x-as-auth", "granted by " + origin.context_id.toString());
  continue_request();
}

class CalloutFilter extends Context {
  constructor(context_id: u32, root_context: CalloutRoot) {
    super(context_id, root_context);
  }

  onRequestHeaders(a: u32, end_of_stream: bool): FilterHeadersStatusValues {
    const token = stream_context.headers.request.get("x-token");
    const headers: HeaderPair[] = [pair(":method", "GET"), pair(":path", "/check?b=" + token), pair(":authority", "auth")];
    const res = this.root_context.httpCall(this.root_context.getConfiguration(), headers, new ArrayBuffer(0), [], 2000, this, onAnswer);
    if (res != WasmResultValues.Ok) {
      deny(503, "callout refused: " + res.toString());
    }
    return FilterHeadersStatusValues.StopIteration;
  }
}

registerRootContext((context_id: u32) => { return new CalloutRoot(context_id); }, "callout");
