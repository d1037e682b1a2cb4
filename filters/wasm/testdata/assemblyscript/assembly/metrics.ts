// metrics: defines a counter, a gauge and a histogram; each request
// counts, records its x-len header's length, and reads the count back.
import {
  RootContext, Context, registerRootContext, FilterHeadersStatusValues, stream_context, Counter, Gauge, Histogram,
} from "@solo-io/proxy-runtime";
import { proxy_get_metric } from "@solo-io/proxy-runtime/imports";
import { Wide } from "./util";

class MetricsRoot extends RootContext {
  requests: Counter;
  last: Gauge;
  lengths: Histogram;

  constructor(context_id: u32) {
    super(context_id);
    this.requests = new Counter("as_requests");
    this.last = new Gauge("as_last_length");
    this.lengths = new Histogram("as_length");
  }

  createContext(context_id: u32): Context {
    return new MetricsFilter(context_id, this);
  }
}

class MetricsFilter extends Context {
  constructor(context_id: u32, root_context: MetricsRoot) {
    super(context_id, root_context);
  }

  onRequestHeaders(a: u32, end_of_stream: bool): FilterHeadersStatusValues {
    const root = this.root_context as MetricsRoot;
    const n = stream_context.headers.request.get("x-len").length;
    root.requests.increment(1);
    root.last.record(root.last.metric_id, n);
    root.lengths.record(root.lengths.metric_id, n);
    // The SDK's get_metric calls the wrong hostcall; read it directly.
    const v = new Wide();
    const res = proxy_get_metric(root.requests.metric_id, v.ptr());
    stream_context.headers.request.add("x-as-count", res == 0 ? v.value.toString() : "error " + res.toString());
    return FilterHeadersStatusValues.Continue;
  }
}

registerRootContext((context_id: u32) => { return new MetricsRoot(context_id); }, "metrics");
