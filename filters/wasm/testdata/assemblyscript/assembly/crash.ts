// crash: throws (AssemblyScript's abort, which the SDK turns into a
// critical log and proc_exit) on requests carrying x-as-crash, so the
// instance dies in the middle of a request.
import {
  RootContext, Context, registerRootContext, FilterHeadersStatusValues, stream_context,
} from "@solo-io/proxy-runtime";

class CrashRoot extends RootContext {
  createContext(context_id: u32): Context {
    return new CrashFilter(context_id, this);
  }
}

class CrashFilter extends Context {
  constructor(context_id: u32, root_context: CrashRoot) {
    super(context_id, root_context);
  }

  onRequestHeaders(a: u32, end_of_stream: bool): FilterHeadersStatusValues {
    if (stream_context.headers.request.get("x-as-crash") != "") {
      throw new Error("crash requested");
    }
    stream_context.headers.request.add("x-as-crash-survived", "yes");
    return FilterHeadersStatusValues.Continue;
  }
}

registerRootContext((context_id: u32) => { return new CrashRoot(context_id); }, "crash");
