// queue_recv registers the shared queue as_queue and, on each
// notification, drains it into the as_queue_items counter and the
// as_queue_sum gauge. queue_send resolves the queue of the VM id given
// as its configuration and enqueues each request's x-queue header.
import {
  RootContext, Context, registerRootContext, FilterHeadersStatusValues, stream_context, Counter, Gauge,
  WasmResultValues, log, LogLevelValues,
} from "@solo-io/proxy-runtime";
import { register_shared_queue, resolve_shared_queue, enqueue_shared_queue } from "@solo-io/proxy-runtime/runtime";
import { proxy_dequeue_shared_queue } from "@solo-io/proxy-runtime/imports";
import { Out, Word, utf8 } from "./util";

class ReceiverRoot extends RootContext {
  items: Counter;
  sum: Gauge;
  total: i64 = 0;

  constructor(context_id: u32) {
    super(context_id);
    this.items = new Counter("as_queue_items");
    this.sum = new Gauge("as_queue_sum");
  }

  onConfigure(configuration_size: u32): bool {
    const token = new Word();
    // The SDK passes its token argument to the host as the address of
    // the token to fill in.
    return register_shared_queue("as_queue", token.ptr() as u32) == WasmResultValues.Ok;
  }

  onQueueReady(token: u32): void {
    // The SDK's dequeue_shared_queue does not compile with asc 0.14.
    const out = new Out();
    while (proxy_dequeue_shared_queue(token, out.ptrPtr(), out.sizePtr()) == WasmResultValues.Ok) {
      this.items.increment(1);
      this.total += I64.parseInt(utf8(out.take()));
      this.sum.record(this.sum.metric_id, this.total);
    }
  }
}

class SenderRoot extends RootContext {
  createContext(context_id: u32): Context {
    return new SenderFilter(context_id, this);
  }
}

class SenderFilter extends Context {
  constructor(context_id: u32, root_context: SenderRoot) {
    super(context_id, root_context);
  }

  onRequestHeaders(a: u32, end_of_stream: bool): FilterHeadersStatusValues {
    const token = new Word();
    let res = resolve_shared_queue(this.root_context.getConfiguration(), "as_queue", token.ptr() as u32);
    if (res == WasmResultValues.Ok) {
      res = enqueue_shared_queue(token.value, String.UTF8.encode(stream_context.headers.request.get("x-queue")));
    }
    if (res != WasmResultValues.Ok) {
      log(LogLevelValues.error, "enqueue failed: " + res.toString());
    }
    stream_context.headers.request.add("x-as-enqueued", res.toString());
    return FilterHeadersStatusValues.Continue;
  }
}

registerRootContext((context_id: u32) => { return new ReceiverRoot(context_id); }, "queue_recv");
registerRootContext((context_id: u32) => { return new SenderRoot(context_id); }, "queue_send");
