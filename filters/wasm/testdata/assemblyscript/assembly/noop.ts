// noop: a filter that lets every request and response through and does
// nothing else, for measuring what a plugin costs by itself.
import {
  RootContext, Context, registerRootContext, FilterHeadersStatusValues,
} from "@solo-io/proxy-runtime";

class NoopRoot extends RootContext {
  createContext(context_id: u32): Context {
    return new NoopFilter(context_id, this);
  }
}

class NoopFilter extends Context {
  constructor(context_id: u32, root_context: NoopRoot) {
    super(context_id, root_context);
  }

  onRequestHeaders(a: u32, end_of_stream: bool): FilterHeadersStatusValues {
    return FilterHeadersStatusValues.Continue;
  }

  onResponseHeaders(a: u32, end_of_stream: bool): FilterHeadersStatusValues {
    return FilterHeadersStatusValues.Continue;
  }
}

registerRootContext((context_id: u32) => { return new NoopRoot(context_id); }, "noop");
