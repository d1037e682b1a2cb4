// body: buffers the request or response body until the end of the
// stream, reads it whole and replaces it. The x-as-body request header
// picks the direction: "request" or "response".
import {
  RootContext, Context, registerRootContext, FilterHeadersStatusValues, FilterDataStatusValues, stream_context,
} from "@solo-io/proxy-runtime";
import { BufferTypeValues, get_buffer_bytes } from "@solo-io/proxy-runtime/runtime";
import { setBuffer, utf8 } from "./util";

class BodyRoot extends RootContext {
  createContext(context_id: u32): Context {
    return new BodyFilter(context_id, this);
  }
}

class BodyFilter extends Context {
  which: string = "";

  constructor(context_id: u32, root_context: BodyRoot) {
    super(context_id, root_context);
  }

  onRequestHeaders(a: u32, end_of_stream: bool): FilterHeadersStatusValues {
    this.which = stream_context.headers.request.get("x-as-body");
    // The body changes length: drop the length the client sent.
    if (this.which == "request") {
      stream_context.headers.request.remove("content-length");
    }
    return FilterHeadersStatusValues.Continue;
  }

  onRequestBody(body_buffer_length: usize, end_of_stream: bool): FilterDataStatusValues {
    if (this.which != "request") {
      return FilterDataStatusValues.Continue;
    }
    if (!end_of_stream) {
      return FilterDataStatusValues.StopIterationAndBuffer;
    }
    const body = utf8(get_buffer_bytes(BufferTypeValues.HttpRequestBody, 0, body_buffer_length as u32));
    setBuffer(BufferTypeValues.HttpRequestBody, 0, body_buffer_length as u32,
      "request of " + body_buffer_length.toString() + " bytes: " + body.toUpperCase());
    return FilterDataStatusValues.Continue;
  }

  onResponseHeaders(a: u32, end_of_stream: bool): FilterHeadersStatusValues {
    // The headers go on before the body is buffered: the new body's
    // length is not known yet.
    if (this.which == "response") {
      stream_context.headers.response.remove("content-length");
    }
    return FilterHeadersStatusValues.Continue;
  }

  onResponseBody(body_buffer_length: usize, end_of_stream: bool): FilterDataStatusValues {
    if (this.which != "response") {
      return FilterDataStatusValues.Continue;
    }
    if (!end_of_stream) {
      return FilterDataStatusValues.StopIterationAndBuffer;
    }
    const body = utf8(get_buffer_bytes(BufferTypeValues.HttpResponseBody, 0, body_buffer_length as u32));
    setBuffer(BufferTypeValues.HttpResponseBody, 0, body_buffer_length as u32,
      "response of " + body_buffer_length.toString() + " bytes ending in " + body.slice(body.length - 4));
    return FilterDataStatusValues.Continue;
  }
}

registerRootContext((context_id: u32) => { return new BodyRoot(context_id); }, "body");
