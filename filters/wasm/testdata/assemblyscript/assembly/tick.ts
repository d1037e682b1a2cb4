// tick: starts a timer when configured; every request waits for the
// next tick, which counts itself in as_ticks and lets the waiting
// requests on (Envoy's postpone_requests pattern).
import {
  RootContext, Context, registerRootContext, FilterHeadersStatusValues, Counter, stream_context,
  continue_request, proxy_set_effective_context,
} from "@solo-io/proxy-runtime";
import { set_tick_period_milliseconds } from "@solo-io/proxy-runtime/runtime";

class TickRoot extends RootContext {
  waiting: u32[] = [];
  ticks: Counter;

  constructor(context_id: u32) {
    super(context_id);
    this.ticks = new Counter("as_ticks");
  }

  createContext(context_id: u32): Context {
    return new TickFilter(context_id, this);
  }

  onConfigure(configuration_size: u32): bool {
    set_tick_period_milliseconds(20);
    return true;
  }

  onTick(): void {
    this.ticks.increment(1);
    const ids = this.waiting;
    this.waiting = [];
    for (let i = 0; i < ids.length; i++) {
      proxy_set_effective_context(ids[i]);
      stream_context.headers.request.add("x-as-ticked", "yes");
      continue_request();
    }
  }
}

class TickFilter extends Context {
  constructor(context_id: u32, root_context: TickRoot) {
    super(context_id, root_context);
  }

  onRequestHeaders(a: u32, end_of_stream: bool): FilterHeadersStatusValues {
    (this.root_context as TickRoot).waiting.push(this.context_id);
    return FilterHeadersStatusValues.StopIteration;
  }
}

registerRootContext((context_id: u32) => { return new TickRoot(context_id); }, "tick");
