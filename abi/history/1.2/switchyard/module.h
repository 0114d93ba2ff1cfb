/* Switchyard module ABI — the one header a module includes.
 *
 * A module is a shared object with:
 *   - one stamp, written by SY_MODULE_STAMP(), in the ELF section ".switchyard_stamp": the host
 *     reads it from the file before dlopen and refuses an incompatible module without running
 *     any of its code;
 *   - one exported entry function, named by SY_MODULE_ENTRY_SYMBOL, which receives the host's
 *     function table and returns the module's descriptor.
 * Nothing else is looked up by name.
 *
 * Versioning. SY_ABI_MAJOR.SY_ABI_MINOR. A module built against M.m loads on a host H.h iff
 * M == H and m <= h. A minor release only appends: new enum values, new slots at the end of
 * structs and tables, new functions at the end of sy_host_t. Every struct that crosses the
 * boundary starts with its size, so each side can tell which slots the other one has
 * (SY_HAS_SLOT). A major release may change anything.
 *
 * Conventions.
 *   - Views (sy_str_t) the module passes in are read during the call only. Views the host hands
 *     out (header_get, body_get, metadata_get, ...) stay valid until that header block, body
 *     or value is next modified, or the current callback returns, whichever comes first;
 *     attribute_get's view lasts until the next attribute_get. Copy what you keep.
 *   - Handles (sy_stream_t*, sy_conn_t*, sy_worker_t*) are opaque and owned by the host.
 *     A sy_stream_t* is valid only inside the callbacks of that stream. To reach a stream from
 *     elsewhere (another thread, a later timer), keep its sy_stream_id_t and use post_to_stream:
 *     a stale id is detected, never dereferenced.
 *   - Functions return sy_status_t; SY_OK is 0.
 *   - Threads: callbacks of a stream or a connection run on the worker that owns it. Module and
 *     filter-config callbacks run on the main thread. Only the functions marked "any thread" may
 *     be called from threads the module made.
 *
 * Every symbol says the minor it came in: "Since 1.0".
 */
#ifndef SWITCHYARD_MODULE_H
#define SWITCHYARD_MODULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Versions and the stamp ------------------------------------------------------------ */

#define SY_ABI_MAJOR 1
#define SY_ABI_MINOR 2

/* Section and magic of the stamp. Since 1.0. */
#define SY_STAMP_SECTION ".switchyard_stamp"
#define SY_STAMP_MAGIC "SYMODULE"

/* The stamp: fixed layout, read from the file by tools that never load the module. Since 1.0. */
typedef struct sy_stamp {
  char magic[8];      /* SY_STAMP_MAGIC, not NUL-terminated */
  uint32_t size;      /* sizeof(sy_stamp_t) when built */
  uint16_t abi_major; /* SY_ABI_MAJOR the module was built against */
  uint16_t abi_minor; /* SY_ABI_MINOR the module was built against */
  char name[64];      /* module name, NUL-terminated */
  char version[32];   /* module version, NUL-terminated, free form (e.g. "1.2.0") */
} sy_stamp_t;

#ifdef __cplusplus
#define SY_EXTERN_C extern "C"
#else
#define SY_EXTERN_C
#endif

/* Writes the stamp. Use exactly once per module, at file scope. Since 1.0. */
#define SY_MODULE_STAMP(NAME, VERSION)                                                \
  SY_EXTERN_C __attribute__((section(SY_STAMP_SECTION), used, visibility("default"))) \
  const sy_stamp_t sy_module_stamp = {{'S', 'Y', 'M', 'O', 'D', 'U', 'L', 'E'},       \
                                      (uint32_t)sizeof(sy_stamp_t),                   \
                                      SY_ABI_MAJOR,                                   \
                                      SY_ABI_MINOR,                                   \
                                      NAME,                                           \
                                      VERSION}

/* The entry symbol (the only one resolved by name). Since 1.0. */
#define SY_MODULE_ENTRY_SYMBOL "sy_module_entry_v1"

/* True when STRUCT_PTR (which starts with a uint32_t size) has FIELD: use it before touching a
 * slot added in a later minor than the one you built against. Since 1.0. */
#define SY_HAS_SLOT(STRUCT_PTR, TYPE, FIELD) \
  ((STRUCT_PTR)->size >= offsetof(TYPE, FIELD) + sizeof(((TYPE*)0)->FIELD))

/* ---- Common types ---------------------------------------------------------------------- */

/* A byte view; not NUL-terminated. Since 1.0. */
typedef struct sy_str {
  const char* ptr;
  size_t len;
} sy_str_t;

/* A header name/value pair of views. Since 1.0. */
typedef struct sy_header {
  sy_str_t name;
  sy_str_t value;
} sy_header_t;

/* Since 1.0. Values are fixed forever; new ones are appended. */
typedef enum sy_status {
  SY_OK = 0,
  SY_ERR_NOT_FOUND = 1,    /* no such header, key, attribute, cluster, queue */
  SY_ERR_INVALID = 2,      /* an argument is malformed (bad header name, bad status code) */
  SY_ERR_STALE = 3,        /* the stream or connection has ended */
  SY_ERR_UNSUPPORTED = 4,  /* the host cannot do this (here, or at all) */
  SY_ERR_TOO_LARGE = 5,    /* over a configured limit */
  SY_ERR_WRONG_PHASE = 6,  /* not possible now (e.g. request headers after they were sent) */
  SY_ERR_CAS_MISMATCH = 7, /* shared data changed since the cas value was read */
  SY_ERR_EMPTY = 8,        /* the queue is empty */
  SY_ERR_INTERNAL = 9,
  /* Since 1.2. Not an error: the data was taken (copied and queued), but the queue is now above
   * its high watermark. Send nothing more until the writable event (on_writable). */
  SY_ABOVE_HIGH_WATERMARK = 10,
} sy_status_t;

typedef enum sy_log_level {
  SY_LOG_TRACE = 0,
  SY_LOG_DEBUG = 1,
  SY_LOG_INFO = 2,
  SY_LOG_WARN = 3,
  SY_LOG_ERROR = 4,
} sy_log_level_t; /* Since 1.0. */

/* Which header block. Since 1.0. */
typedef enum sy_header_kind {
  SY_REQUEST_HEADERS = 0, /* includes :method :path :authority :scheme */
  SY_REQUEST_TRAILERS = 1,
  SY_RESPONSE_HEADERS = 2, /* includes :status */
  SY_RESPONSE_TRAILERS = 3,
} sy_header_kind_t;

/* Direction of data. Since 1.0. */
typedef enum sy_direction {
  SY_REQUEST = 0,  /* downstream -> upstream */
  SY_RESPONSE = 1, /* upstream -> downstream */
} sy_direction_t;

/* Which body bytes a body call means. Since 1.0. */
typedef enum sy_body_part {
  SY_BODY_CHUNK = 0,    /* the chunk the current body callback is about */
  SY_BODY_BUFFERED = 1, /* everything buffered so far in this direction (see SY_STOP_AND_BUFFER) */
} sy_body_part_t;

/* What a filter callback tells the host. Since 1.0. */
typedef enum sy_filter_status {
  /* Go on: pass this phase's data to the next filter. */
  SY_CONTINUE = 0,
  /* Pause this direction until the filter calls resume(). Data arriving meanwhile is held by
   * the host (reading from the peer stops at the watermark; nothing is dropped). */
  SY_STOP = 1,
  /* From a body callback: keep this chunk in the buffered body and call me again with the next
   * chunk (and at end of stream). When I return SY_CONTINUE, the buffered body goes on.
   * From a header callback: hold the headers (later filters do not see them yet) but call my
   * body callbacks as data arrives; the headers go on when a body callback returns SY_CONTINUE.
   * The host answers 413 (requests) or 500 (responses) when the buffer passes the listener's
   * limits.buffered_body.
   * Returned at end of stream (the last body chunk, or headers with no body), there is no next
   * chunk to wait for: the direction stays paused, with the whole body buffered, until the
   * filter calls resume(). */
  SY_STOP_AND_BUFFER = 2,
  /* Since 1.2 (hosts before 1.2 do not know it: check host->abi_minor >= 2). From a body
   * callback: keep this chunk with what the filter holds and call me again with the next
   * chunk, as SY_STOP_AND_BUFFER does, but with no buffer limit: when what the stream's filters
   * hold in this direction passes the high watermark (256 KiB), the host stops reading from the
   * peer, and reads on below the low watermark (64 KiB). So the filter may hold each chunk
   * while something else (a callout, ext_proc's processor) decides about it, and memory stays
   * bounded. The filter hands held bytes on by itself, from a task, timer or callout callback
   * acting for it: body_drain(SY_BODY_BUFFERED) takes them out, inject_data sends them (or
   * others) on after the filter. SY_CONTINUE from a later body callback passes everything still
   * held. Returned at end of stream, the direction stays paused until resume(), which passes
   * what is still held and the end of stream. From a header callback: as SY_STOP_AND_BUFFER
   * (the headers wait until a body callback returns SY_CONTINUE or resume()), with the
   * watermark instead of the limit; inject nothing before the headers have gone on. */
  SY_STOP_AND_WATERMARK = 3,
} sy_filter_status_t;

/* Kinds of metric. Since 1.0. */
typedef enum sy_metric_kind {
  SY_COUNTER = 0,
  SY_GAUGE = 1,
  SY_HISTOGRAM = 2,
} sy_metric_kind_t;

typedef struct sy_label {
  sy_str_t name;
  sy_str_t value;
} sy_label_t; /* Since 1.0. */

/* Opaque handles, owned by the host. Since 1.0. */
typedef struct sy_module sy_module_t; /* this module's generation; valid until on_unload */
typedef struct sy_stream sy_stream_t; /* an HTTP stream, inside its callbacks only */
typedef struct sy_conn sy_conn_t;     /* a TCP proxy connection, inside its callbacks only */
typedef struct sy_worker sy_worker_t; /* a worker thread; valid between worker start and stop */
/* A timer. Since 1.2, a handle whose timer fired, was cancelled or was dropped is merely
 * unknown: timer_cancel on it does nothing (earlier hosts could crash). */
typedef struct sy_timer sy_timer_t;

/* A stream's identity that may be kept anywhere and used from any thread. Never reused, so a
 * stale id is recognised. 0 is never a valid id. Since 1.0. */
typedef uint64_t sy_stream_id_t;

/* filter_index outside any filter's callback or task. Since 1.2. */
#define SY_NO_FILTER UINT32_MAX

/* A reply delivered to a callout callback; views valid during the callback. Since 1.0. */
typedef struct sy_callout_response {
  uint32_t size;
  uint32_t status; /* HTTP status, or 0 when the callout failed (see failure) */
  const sy_header_t* headers;
  size_t header_count;
  sy_str_t body;
  const sy_header_t* trailers;
  size_t trailer_count;
  sy_str_t failure; /* empty on success; else why: "timeout", "connect", "reset", ... */
} sy_callout_response_t;

/* A streaming callout (stream_callout_start). Owned by the host; valid from the moment
 * stream_callout_start returns it until its on_complete or on_failure callback returns, or until
 * stream_callout_reset returns, whichever comes first. One started from a stream is also ended
 * when that stream ends (see stream_callout_start). Since 1.2. */
typedef struct sy_callout_stream sy_callout_stream_t;
/* A unary callout started with http_callout_start; valid until its FN runs or
 * http_callout_cancel returns. Since 1.2. */
typedef struct sy_callout sy_callout_t;

/* Why a streaming callout failed (on_failure). Values are fixed forever; new ones are appended,
 * so treat an unknown value as a failure too. Since 1.2. */
typedef enum sy_callout_failure {
  /* The server reset the stream, closed the connection before the response ended, or sent a
   * malformed response. */
  SY_CALLOUT_RESET = 0,
  /* The whole-stream deadline (timeout_ms) passed before the response ended. */
  SY_CALLOUT_TIMEOUT = 1,
  /* No connection could be made: refused, connect timeout, TLS handshake failure, no
   * endpoints. Connect retries (the cluster's connect_retries) have been tried first. */
  SY_CALLOUT_CONNECT = 2,
  /* The cluster is not in the config. Never delivered: stream_callout_start returns
   * SY_ERR_NOT_FOUND instead. Listed so the reasons cover every way a callout can fail. */
  SY_CALLOUT_CLUSTER_UNKNOWN = 3,
  /* The cluster's pool is full (max_connections reached and max_pending waiting). */
  SY_CALLOUT_OVERFLOW = 4,
  /* The worker is stopping (the proxy shuts down); only callouts started from a worker get it. */
  SY_CALLOUT_SHUTDOWN = 5,
} sy_callout_failure_t;

/* What a streaming callout reports, on the worker it was started on. The module owns the
 * struct; the host copies it in stream_callout_start, so it may live on the stack. SIZE is
 * sizeof(sy_stream_callout_callbacks_t) as the module was built; slots past it count as NULL,
 * and any callback may be NULL. ARG is the one given to stream_callout_start; CS is the handle.
 * Views are valid during the callback only.
 *
 * Order: on_headers once (the response head, with :status), then on_data any number of times,
 * then on_trailers at most once, then on_complete; or on_failure at any point instead of what
 * is left. The end of the response is marked exactly once before on_complete: by END_STREAM of
 * on_headers (no body), of on_data (possibly with empty DATA), or by on_trailers. Exactly one of
 * on_complete and on_failure ends the callout; after it returns, CS is invalid. No callback runs
 * before stream_callout_start returns, and none after stream_callout_reset returns.
 *
 * For a callout started from a stream, the callbacks run as that stream's callbacks do: the
 * sy_stream_t* given to stream_callout_start is valid inside them, and what they do with the
 * stream (resume, inject_data, send_local_reply, ...) takes effect as from a task posted with
 * post_to_filter for the filter that started the callout (inject_data enters after it,
 * route_config is its own). Since 1.2. */
typedef struct sy_stream_callout_callbacks {
  uint32_t size;
  /* The response head: HEADERS include ":status". END_STREAM: no body or trailers follow. */
  void (*on_headers)(void* arg, sy_callout_stream_t* cs, const sy_header_t* headers,
                     size_t header_count, bool end_stream);
  /* Response body bytes. END_STREAM: the last of them (DATA may be empty then). */
  void (*on_data)(void* arg, sy_callout_stream_t* cs, sy_str_t data, bool end_stream);
  /* Response trailers (gRPC's grpc-status, grpc-message); the response ends with them. */
  void (*on_trailers)(void* arg, sy_callout_stream_t* cs, const sy_header_t* trailers,
                      size_t trailer_count);
  /* The response ended. The callout is over: request data not yet sent is dropped (HTTP/2:
   * the stream is cancelled with RST_STREAM CANCEL if the request side was still open, as gRPC
   * clients do when the server ends the call first). */
  void (*on_complete)(void* arg, sy_callout_stream_t* cs);
  /* The callout failed; DETAILS says more (for logs). */
  void (*on_failure)(void* arg, sy_callout_stream_t* cs, sy_callout_failure_t reason,
                     sy_str_t details);
  /* The request side drained below its low watermark after stream_callout_send_data returned
   * SY_ABOVE_HIGH_WATERMARK: send more now. */
  void (*on_writable)(void* arg, sy_callout_stream_t* cs);
} sy_stream_callout_callbacks_t;

/* Where metadata_ns_get reads a namespace from. Values are fixed forever; new ones are
 * appended. Since 1.2. */
typedef enum sy_metadata_source {
  SY_METADATA_DYNAMIC = 0, /* the stream's dynamic metadata (metadata_set, metadata_ns_set) */
  SY_METADATA_ROUTE = 1,   /* the `metadata:` block of the stream's route */
  /* The `metadata:` block of the stream's listener: a listener holds its routes, so it is
   * what Envoy calls the virtual host. */
  SY_METADATA_VIRTUAL_HOST = 2,
  SY_METADATA_CLUSTER = 3, /* the `metadata:` block of the stream's routed cluster */
} sy_metadata_source_t;

/* The type of a value read with attribute_get_typed. Values are fixed forever; new ones are
 * appended. Since 1.2. */
typedef enum sy_value_type {
  SY_VALUE_STRING = 0,    /* text in BYTES */
  SY_VALUE_INT = 1,       /* NUMBER */
  SY_VALUE_BOOL = 2,      /* NUMBER: 0 or 1 */
  SY_VALUE_BYTES = 3,     /* binary in BYTES (a DER certificate, say) */
  SY_VALUE_TIMESTAMP = 4, /* NUMBER: nanoseconds since the Unix epoch */
  SY_VALUE_DURATION = 5,  /* NUMBER: nanoseconds */
} sy_value_type_t;

/* A typed value. The module sets SIZE to sizeof(sy_value_t) before the call; the host fills
 * the rest. BYTES is valid as attribute_get's view is. Since 1.2. */
typedef struct sy_value {
  uint32_t size;
  sy_value_type_t type;
  int64_t number;
  sy_str_t bytes;
} sy_value_t;

/* Callback types. */
typedef void (*sy_stream_task_fn)(sy_stream_t* stream, void* arg); /* runs on the worker */
typedef void (*sy_worker_task_fn)(sy_worker_t* worker, void* arg); /* runs on the worker */
typedef void (*sy_drop_fn)(void* arg); /* a post or timer will never run: free ARG */
typedef void (*sy_callout_fn)(void* arg, const sy_callout_response_t* response);
typedef void (*sy_bytes_sink_fn)(void* ctx, sy_str_t bytes, uint64_t cas);
typedef void (*sy_main_task_fn)(void* arg); /* runs on the main thread; since 1.2 */

/* ---- The host's function table --------------------------------------------------------- */

/* Handed to the entry function; valid until on_unload returns. Functions that take a stream
 * must be called on its worker, inside its callbacks or a task posted to it. Since 1.0. */
typedef struct sy_host {
  uint32_t size;
  uint16_t abi_major;
  uint16_t abi_minor;

  /* -- Logging: attributed to the module. Any thread. -- */
  void (*log)(sy_module_t* module, sy_log_level_t level, sy_str_t message);
  bool (*log_enabled)(sy_log_level_t level);

  /* -- Headers and trailers (a stream's callbacks) --
   * Names are case-insensitive; the host stores them lower-case. Pseudo-headers are headers. */
  /* Number of values of NAME; with NAME empty, the number of headers in the block. */
  size_t (*header_count)(sy_stream_t* s, sy_header_kind_t kind, sy_str_t name);
  /* The INDEX-th value of NAME (0-based, in order). */
  sy_status_t (*header_get)(sy_stream_t* s, sy_header_kind_t kind, sy_str_t name, size_t index,
                            sy_str_t* value);
  /* The INDEX-th header of the block, for iteration. */
  sy_status_t (*header_at)(sy_stream_t* s, sy_header_kind_t kind, size_t index, sy_str_t* name,
                           sy_str_t* value);
  /* Replace all values of NAME with VALUE. Creates the trailer block if needed. */
  sy_status_t (*header_set)(sy_stream_t* s, sy_header_kind_t kind, sy_str_t name, sy_str_t value);
  sy_status_t (*header_add)(sy_stream_t* s, sy_header_kind_t kind, sy_str_t name, sy_str_t value);
  sy_status_t (*header_remove)(sy_stream_t* s, sy_header_kind_t kind, sy_str_t name);

  /* -- Bodies (a stream's callbacks). Content-Length is kept right by the host. -- */
  sy_status_t (*body_get)(sy_stream_t* s, sy_direction_t dir, sy_body_part_t part, sy_str_t* out);
  sy_status_t (*body_replace)(sy_stream_t* s, sy_direction_t dir, sy_body_part_t part,
                              sy_str_t data);
  sy_status_t (*body_append)(sy_stream_t* s, sy_direction_t dir, sy_body_part_t part,
                             sy_str_t data);
  sy_status_t (*body_prepend)(sy_stream_t* s, sy_direction_t dir, sy_body_part_t part,
                              sy_str_t data);
  /* Removes the first N bytes. */
  sy_status_t (*body_drain)(sy_stream_t* s, sy_direction_t dir, sy_body_part_t part, size_t n);
  /* Sends DATA on to the next filter in DIR now, as if it came after what already passed. */
  sy_status_t (*inject_data)(sy_stream_t* s, sy_direction_t dir, sy_str_t data, bool end_stream);

  /* -- Flow -- */
  /* Un-pauses DIR after SY_STOP / SY_STOP_AND_BUFFER: iteration goes on with the next filter. */
  sy_status_t (*resume)(sy_stream_t* s, sy_direction_t dir);
  /* Ends the stream with a reply made here, if the response has not started. DETAILS goes to
   * the access log. Works in request and response phases. No filter callback (not even
   * on_stream_complete or on_stream_destroy) runs before the calling callback returns. Since
   * 1.1, a reply made in a request phase then passes through the response phases of the
   * stream's filters, as an upstream's response would; one made in a response phase goes out
   * as it is. */
  sy_status_t (*send_local_reply)(sy_stream_t* s, uint32_t status, const sy_header_t* headers,
                                  size_t header_count, sy_str_t body, sy_str_t details);
  sy_stream_id_t (*stream_id)(sy_stream_t* s);
  /* The worker that owns the stream. */
  sy_worker_t* (*stream_worker)(sy_stream_t* s);

  /* -- Scheduler and timers -- */
  /* Any thread. Runs FN on the stream's worker if the stream is still alive; else calls DROP
   * (may be NULL) and counts it. A stream known to be gone returns SY_ERR_STALE after calling
   * DROP in the caller's thread (so DROP must not take a lock the caller holds); one that ends
   * while the task is queued gets DROP on its worker, and SY_OK was returned. Since 1.2, a task
   * posted from a callback of that same stream acts for the filter whose callback posted it
   * (see post_to_filter); posted from anywhere else, for no filter: inject_data then enters at
   * the head of the chain and route_config returns NULL. */
  sy_status_t (*post_to_stream)(sy_stream_id_t id, sy_stream_task_fn fn, sy_drop_fn drop,
                                void* arg);
  /* Any thread. Runs FN on worker INDEX (-1: any), with no stream. Since 1.2 FN receives the
   * worker's own handle (before: NULL), good for worker_timer and http_callout; timers set
   * through it are dropped when the worker stops. Use post_to_worker_drop to learn of a task
   * that never runs. */
  sy_status_t (*post_to_worker)(int32_t index, sy_worker_task_fn fn, void* arg);
  uint32_t (*worker_count)(void);
  int32_t (*worker_index)(sy_worker_t* w);
  /* A one-shot timer on the stream's worker; cancelled (DROP called) if the stream ends first.
   * Since 1.2: those DROPs run before on_stream_destroy, and FN runs as the filter that set the
   * timer (as a post_to_filter task does). */
  sy_timer_t* (*stream_timer)(sy_stream_t* s, uint64_t ms, sy_stream_task_fn fn, sy_drop_fn drop,
                              void* arg);
  /* A one-shot timer on worker W, with no stream. It is cancelled when W's filter config leaves
   * the worker (before its on_worker_stop) or, for the worker's own handle, when the worker
   * stops; worker_timer_drop (1.2) tells you so. */
  sy_timer_t* (*worker_timer)(sy_worker_t* w, uint64_t ms, sy_worker_task_fn fn, void* arg);
  /* Cancels a timer that has not fired: DROP (if any) is called. On the timer's worker. Since
   * 1.2, a timer that fired, was cancelled or was dropped is simply unknown: nothing happens. */
  void (*timer_cancel)(sy_timer_t* t);

  /* -- HTTP callouts to a configured cluster; the reply arrives on the same worker -- */
  /* HEADERS must include :method and :path (:authority defaults to the cluster name). From a
   * stream (its callbacks) or from a worker task (stream NULL, worker set). When it returns
   * SY_OK, FN runs exactly once on that worker, with the reply or a failure, even if the stream
   * ended first (use stream_id and post_to_stream to get back to it); the module's generation
   * stays loaded until then. */
  sy_status_t (*http_callout)(sy_stream_t* s, sy_worker_t* w, sy_str_t cluster,
                              const sy_header_t* headers, size_t header_count, sy_str_t body,
                              uint64_t timeout_ms, sy_callout_fn fn, void* arg);
  /* The "host:port" of CLUSTER's endpoint INDEX (0-based, in config order), given to SINK
   * (its cas argument is 0) during the call. SY_ERR_NOT_FOUND for an unknown cluster or an
   * INDEX past the last endpoint. It says nothing of the cluster's TLS settings: to talk to a
   * cluster as configured (TLS, SNI, CA, client certificate, load balancing) use a callout. */
  sy_status_t (*cluster_endpoint)(sy_str_t cluster, size_t index, sy_bytes_sink_fn sink, void* ctx);

  /* -- Dynamic metadata (namespaced) and filter state, per stream; values are strings (JSON for
   * structured data) and are visible to later filters and to the access log. Since 1.2 a
   * namespace is a JSON object (metadata_ns_set, metadata_ns_get): metadata_set stores a JSON
   * string member, and metadata_get returns a string member as the string, any other member as
   * its JSON text. The access log prints them through its `fields:` (%DYNAMIC_METADATA(ns:key)%,
   * %FILTER_STATE(key)%). -- */
  sy_status_t (*metadata_set)(sy_stream_t* s, sy_str_t ns, sy_str_t key, sy_str_t value);
  sy_status_t (*metadata_get)(sy_stream_t* s, sy_str_t ns, sy_str_t key, sy_str_t* value);
  sy_status_t (*filter_state_set)(sy_stream_t* s, sy_str_t key, sy_str_t value);
  sy_status_t (*filter_state_get)(sy_stream_t* s, sy_str_t key, sy_str_t* value);

  /* -- Stream info by attribute path, as Proxy-Wasm properties and ext_proc attributes name
   * them: request.path, request.method, request.host, request.scheme, request.protocol,
   * request.id, request.time, request.duration, request.size, source.address, source.port,
   * destination.address, destination.port, connection.id, connection.tls_version,
   * connection.requested_server_name, connection.peer_certificate, response.code,
   * response.flags, response.code_details, response.size, upstream.address, xds.route_name,
   * xds.cluster_name, xds.listener_name. Numbers are decimal text; request.time is the wall
   * clock when the request began, in milliseconds since the Unix epoch, and request.duration
   * the milliseconds since then. -- */
  sy_status_t (*attribute_get)(sy_stream_t* s, sy_str_t path, sy_str_t* value);

  /* -- Route control -- */
  /* Re-route after a header change (the next filter sees the new route). */
  sy_status_t (*clear_route_cache)(sy_stream_t* s);
  /* Send the request to this "host:port" of the routed cluster instead of load balancing. */
  sy_status_t (*set_upstream_override_host)(sy_stream_t* s, sy_str_t host);
  /* This filter's per-route config object (from on_route_config_create), or NULL. */
  void* (*route_config)(sy_stream_t* s);

  /* -- Metrics: exported on the admin API as module.<module>.<label values>.<name>, a namespace
   * only the module writes in (the host's own stats about a module are loader.<module>.*).
   * Any thread. -- */
  /* Counters: metric_add with delta >= 0. Gauges: metric_add (any sign) and metric_set.
   * Histograms: metric_record (milliseconds by default bucket scheme). metric_get reads any.
   * Since 1.2, metric_define returns SY_ERR_INVALID for a NAME that is empty, longer than 200
   * bytes or not made of [A-Za-z0-9_.:-]; a label name not made of [A-Za-z0-9_] (not starting
   * with a digit; "module" is the host's); a label value that is empty, longer than 200 bytes or
   * has a byte outside visible ASCII (0x21-0x7e). */
  sy_status_t (*metric_define)(sy_module_t* module, sy_metric_kind_t kind, sy_str_t name,
                               const sy_label_t* labels, size_t label_count, uint32_t* id);
  sy_status_t (*metric_add)(sy_module_t* module, uint32_t id, int64_t delta);
  sy_status_t (*metric_set)(sy_module_t* module, uint32_t id, int64_t value);
  sy_status_t (*metric_record)(sy_module_t* module, uint32_t id, uint64_t value);
  sy_status_t (*metric_get)(sy_module_t* module, uint32_t id, int64_t* value);

  /* -- Process-wide shared data and queues. Any thread. One namespace for the whole process:
   * every module and every generation of a module sees the same keys and queue names (prefix
   * yours, e.g. with the module name, unless sharing is the point). -- */
  /* SINK receives the value and its cas (a version); not called when absent. */
  sy_status_t (*shared_get)(sy_str_t key, sy_bytes_sink_fn sink, void* ctx);
  /* CAS 0 sets unconditionally; else only if the value's cas still equals CAS. */
  sy_status_t (*shared_set)(sy_str_t key, sy_str_t value, uint64_t cas);
  /* Creates (or finds) a queue. The worker W that registers it is notified (on_queue_ready) on
   * W's thread, the last registration winning: a filter config's W (from on_worker_start)
   * through that filter's on_queue_ready, for HTTP filters and (since 1.2) network filters;
   * since 1.2 a worker's own W (a post_to_worker task's, stream_worker's) through MODULE's
   * descriptor on_queue_ready. W NULL: nobody is notified. An owner that has gone (its config
   * left the worker, its generation was swapped out) is not called: the data stays queued,
   * the notification is dropped and counted (host.queue_notifications_dropped). */
  sy_status_t (*queue_register)(sy_module_t* module, sy_worker_t* w, sy_str_t name, uint32_t* id);
  sy_status_t (*queue_resolve)(sy_str_t name, uint32_t* id);
  sy_status_t (*queue_enqueue)(uint32_t id, sy_str_t data);
  sy_status_t (*queue_dequeue)(uint32_t id, sy_bytes_sink_fn sink, void* ctx);

  /* -- TCP proxy connections (network filters' callbacks) -- */
  sy_status_t (*conn_data_get)(sy_conn_t* c, sy_direction_t dir, sy_str_t* out);
  sy_status_t (*conn_data_replace)(sy_conn_t* c, sy_direction_t dir, sy_str_t data);
  /* Writes DATA toward DIR's destination now (SY_REQUEST: to upstream). */
  sy_status_t (*conn_inject)(sy_conn_t* c, sy_direction_t dir, sy_str_t data);
  sy_status_t (*conn_close)(sy_conn_t* c);
  /* source.address, destination.address, connection.id, upstream.address, ... as above. */
  sy_status_t (*conn_attribute_get)(sy_conn_t* c, sy_str_t path, sy_str_t* value);

  /* -- Since 1.1 (check with SY_HAS_SLOT(host, sy_host_t, skip_body)) -- */
  /* The calling filter is done with DIR's body on this stream: its body callbacks for DIR are
   * not called again (trailer callbacks still are). When no filter of the stream wants DIR's
   * body by the time DIR's headers go on, the host keeps the message's own framing
   * (Content-Length stays) and passes the body through without copying it. Call it from a
   * callback of the stream, before DIR's headers go on to get the framing benefit; not while
   * the filter holds DIR (SY_STOP, SY_STOP_AND_BUFFER): SY_ERR_WRONG_PHASE. */
  sy_status_t (*skip_body)(sy_stream_t* s, sy_direction_t dir);

  /* -- Since 1.2 (check with SY_HAS_SLOT(host, sy_host_t, post_to_filter)) -- */
  /* Any thread. As post_to_worker, and DROP (may be NULL) is called when FN will never run: no
   * such worker (in the caller's thread, SY_ERR_NOT_FOUND returned), or the worker stopped
   * first (on the main thread, after the worker's last task). */
  sy_status_t (*post_to_worker_drop)(int32_t index, sy_worker_task_fn fn, sy_drop_fn drop,
                                     void* arg);
  /* As worker_timer, and DROP (may be NULL) is called when the timer will never fire:
   * timer_cancel, W's filter config leaving the worker (before its on_worker_stop), or the
   * worker stopping. */
  sy_timer_t* (*worker_timer_drop)(sy_worker_t* w, uint64_t ms, sy_worker_task_fn fn,
                                   sy_drop_fn drop, void* arg);
  /* The position of the calling filter in the stream's chain (inside its callbacks, tasks and
   * timers), for post_to_filter; SY_NO_FILTER elsewhere. */
  uint32_t (*filter_index)(sy_stream_t* s);
  /* Any thread. As post_to_stream, but FN runs as the filter at FILTER_INDEX would in its own
   * callback: inject_data enters after that filter, route_config is that filter's per-route
   * config, resume and body calls mean what that filter holds. */
  sy_status_t (*post_to_filter)(sy_stream_id_t id, uint32_t filter_index, sy_stream_task_fn fn,
                                sy_drop_fn drop, void* arg);
  /* -- Also since 1.2 (check with SY_HAS_SLOT(host, sy_host_t, <name>) before each) -- */

  /* -- Streaming callouts: a request stream to a configured cluster, on the caller's worker,
   * through that worker's pool for the cluster (the same pool, load balancing and TLS settings
   * as proxied requests and http_callout: an HTTP/2 cluster multiplexes callouts over its pooled
   * connections; a TLS cluster keeps its SNI, CA and client certificate). gRPC rides on it: the
   * module frames messages (5-byte prefix, see <switchyard/grpc_framing.hpp>) and sends
   * ":method: POST", ":path: /pkg.Service/Method", "content-type: application/grpc",
   * "te: trailers" to an HTTP/2 cluster. -- */

  /* Starts a callout stream and sends its headers as soon as a connection is ready. HEADERS
   * must include :method and :path; :authority defaults to the cluster name and :scheme follows
   * the cluster's TLS. The request side stays open: end it with stream_callout_send_data
   * (END_STREAM) or stream_callout_send_trailers. TIMEOUT_MS: a deadline for the whole callout
   * (0: none). CB and ARG: see sy_stream_callout_callbacks_t. On SY_OK, *OUT is the handle.
   *
   * From a stream's callbacks (S set, W NULL): the callout belongs to that stream. When the
   * stream ends, its open callouts are reset silently (no callback; an HTTP/2 cluster sees
   * RST_STREAM CANCEL, an HTTP/1.1 one a closed connection) after on_stream_complete and before
   * on_stream_destroy; their handles stay valid until on_stream_destroy returns (calls on them
   * then return SY_ERR_STALE, and stream_callout_reset does nothing). So a filter may keep the
   * handle in its per-stream state and reset it in on_stream_destroy either way.
   * From a worker (S NULL, W set: in on_worker_start, a worker timer or task): it lives until
   * it ends, is reset, or the worker stops (SY_CALLOUT_SHUTDOWN); the module's generation
   * stays loaded while it is open.
   * Returns SY_ERR_NOT_FOUND for a cluster not in the config, SY_ERR_INVALID for bad headers or
   * arguments. On the worker of S or W. */
  sy_status_t (*stream_callout_start)(sy_stream_t* s, sy_worker_t* w, sy_str_t cluster,
                                      const sy_header_t* headers, size_t header_count,
                                      uint64_t timeout_ms, const sy_stream_callout_callbacks_t* cb,
                                      void* arg, sy_callout_stream_t** out);
  /* Sends request body bytes (copied; queued until a connection is ready and flow control lets
   * them go). END_STREAM ends the request side. Returns SY_OK, or SY_ABOVE_HIGH_WATERMARK when
   * the bytes were taken but the queue is above its high watermark (256 KiB): wait for
   * on_writable before sending more. SY_ERR_WRONG_PHASE after the request side ended;
   * SY_ERR_STALE after the callout's stream ended. On the callout's worker. */
  sy_status_t (*stream_callout_send_data)(sy_callout_stream_t* cs, sy_str_t data, bool end_stream);
  /* Sends request trailers (copied) and ends the request side. Over HTTP/1.1 they go in the
   * chunked body's trailer section when the request is chunked, else they are dropped.
   * Returns as stream_callout_send_data does. On the callout's worker. */
  sy_status_t (*stream_callout_send_trailers)(sy_callout_stream_t* cs, const sy_header_t* trailers,
                                              size_t trailer_count);
  /* Ends the callout now, both ways: HTTP/2 RST_STREAM CANCEL, HTTP/1.1 the connection is
   * closed (not reused). No callback runs after it returns, and CS is invalid then (except for
   * the handle of a stream that has ended, see stream_callout_start). Allowed inside the
   * callout's own callbacks; inside on_complete or on_failure it does nothing. */
  sy_status_t (*stream_callout_reset)(sy_callout_stream_t* cs);
  /* Flow control of the response: PAUSED true stops reading it (HTTP/2: no more window for
   * this stream; HTTP/1.1: the connection stops reading), false reads on. Bytes already
   * received may still arrive in on_data after pausing (at most one flow-control window,
   * 256 KiB). On the callout's worker. */
  sy_status_t (*stream_callout_pause_reading)(sy_callout_stream_t* cs, bool paused);

  /* -- Unary callouts that can be cancelled -- */
  /* As http_callout, and *OUT (which may be NULL) receives a handle for http_callout_cancel.
   * Unlike http_callout, FN never runs before http_callout_start returns. */
  sy_status_t (*http_callout_start)(sy_stream_t* s, sy_worker_t* w, sy_str_t cluster,
                                    const sy_header_t* headers, size_t header_count, sy_str_t body,
                                    uint64_t timeout_ms, sy_callout_fn fn, void* arg,
                                    sy_callout_t** out);
  /* Cancels a callout whose FN has not run: FN never runs, the upstream request is abandoned
   * (HTTP/2 RST_STREAM CANCEL, HTTP/1.1 connection closed). On the callout's worker; not with a
   * handle whose FN has run (it is invalid then). */
  sy_status_t (*http_callout_cancel)(sy_callout_t* c);

  /* -- Stream reset -- */
  /* Ends the stream abruptly, in any phase, as Envoy's resetStream: no (further) response is
   * sent. The client sees HTTP/2 RST_STREAM with INTERNAL_ERROR, or over HTTP/1.1 the
   * connection closed (mid-body when the response had started; with no response at all when it
   * had not). The upstream request, if any, is abandoned. DETAILS goes to the access log's
   * details, with the response flag "FR" (filter reset). The stream's filters get no other
   * phase callback; on_stream_complete and on_stream_destroy still run, after the calling
   * callback returns. This is how a filter fails closed once the response has started, when
   * send_local_reply can no longer be used. SY_ERR_STALE if the stream has already ended. */
  sy_status_t (*stream_reset)(sy_stream_t* s, sy_str_t details);
  /* -- Typed metadata (also since 1.2; check with SY_HAS_SLOT(host, sy_host_t,
   * attribute_get_typed)) -- */
  /* Replaces the dynamic-metadata namespace NS with the members of OBJECT, a JSON object
   * (Envoy's filter_metadata[NS]). A member whose value is a JSON string reads back through
   * metadata_get as that string; any other value as its JSON text. SY_ERR_INVALID when NS is
   * empty or OBJECT is not one well-formed JSON object (nothing is changed then). */
  sy_status_t (*metadata_ns_set)(sy_stream_t* s, sy_str_t ns, sy_str_t object);
  /* As metadata_ns_set, but merges: OBJECT's members replace the members of NS with the same
   * key and the others stay, as Envoy's setDynamicMetadata merges a Struct. */
  sy_status_t (*metadata_ns_merge)(sy_stream_t* s, sy_str_t ns, sy_str_t object);
  /* The namespace NS of SOURCE as one JSON object (compact, keys in byte order). For the
   * dynamic source, values set with metadata_set are JSON strings. SY_ERR_NOT_FOUND when
   * SOURCE has no such namespace (the stream has no route or cluster yet, say). *OUT is valid
   * until the next metadata_ns_get on this thread or the current callback returns. */
  sy_status_t (*metadata_ns_get)(sy_stream_t* s, sy_metadata_source_t source, sy_str_t ns,
                                 sy_str_t* out);
  /* An attribute (the paths of attribute_get) with its type: request.time is a TIMESTAMP,
   * request.duration a DURATION, sizes, ports, codes and connection.id INTs, connection.mtls a
   * BOOL, everything else a STRING. Since 1.2 these attributes are also known (to
   * attribute_get as text): upstream.port, request.total_size and response.total_size (the
   * body plus the header block counted as HTTP/1.1 text, "name: value" and CRLF per header),
   * connection.uri_san_peer_certificate and connection.dns_san_peer_certificate (the client
   * certificate's first URI and DNS subject alternative names), node.id and node.cluster (the
   * config's `node:`, absent when it does not set them; conn_attribute_get knows them too) and
   * plugin_name (the calling filter's name, as `filter:` chose it; for conn_attribute_get, the
   * network filter's, inside its on_connection_create and on_data). SY_ERR_NOT_FOUND as for
   * attribute_get; SY_ERR_INVALID when OUT's size is too small. */
  sy_status_t (*attribute_get_typed)(sy_stream_t* s, sy_str_t path, sy_value_t* out);
  /* The stream's buffer limit in bytes: how much a filter may hold in one direction before
   * the host answers 413 (request) or 500 (response); the listener's limits.buffered_body. */
  uint64_t (*buffer_limit)(sy_stream_t* s);

  /* -- Also since 1.2 (check with SY_HAS_SLOT(host, sy_host_t, <name>) before each) -- */
  /* A body added to a message that had none. The calling filter holds DIR's headers of a
   * message without body (its headers callback got END_STREAM and returned SY_STOP or
   * SY_STOP_AND_BUFFER): the headers go on now, to the next filters and the peer, as the head of
   * a message with a body of unknown length (HTTP/1.1: chunked), and the filter then supplies
   * that body with inject_data, the last piece with END_STREAM. From a task, timer or callout
   * callback acting for the filter (not from inside its headers callback, which has not
   * returned yet). SY_ERR_WRONG_PHASE when the filter holds no such headers; SY_ERR_STALE after
   * the stream ended. */
  sy_status_t (*continue_headers_with_body)(sy_stream_t* s, sy_direction_t dir);
  /* The module's own `config:` block (in its `modules:` entry) as JSON, "{}" when it has none:
   * settings for the whole module rather than for one filter (a Wasm VM's config, say). Valid
   * until on_unload. Callable from the entry function and on_load on; a config reload that
   * changes the block loads a new generation of the module. Any thread. */
  sy_status_t (*module_config)(sy_module_t* module, sy_str_t* out);
  /* Any thread. Runs FN on the main thread, where module and filter-config callbacks run (to
   * touch state they own without a lock, say). Tasks run in the order posted from one thread,
   * before the generation that posted them is unloaded. DROP (may be NULL) is called instead
   * when FN will never run: the proxy is stopping (SY_ERR_NOT_FOUND returned, DROP called in the
   * caller's thread). To get back to a stream or a worker from FN, use post_to_filter or
   * post_to_worker. */
  sy_status_t (*post_to_main)(sy_main_task_fn fn, sy_drop_fn drop, void* arg);
  /* Says why the filter ended the stream, as Envoy's setResponseFlag: FLAG is one of Envoy's
   * short response-flag names a filter may set, "UAEX" (an external authorization service
   * refused), "RLSE" (a rate-limit service failed), "RL" (rate limited), "FI" (fault injected:
   * aborted) or "DI" (fault injected: delayed). The access log's response_flags and the
   * response.flags attribute show it. A stream keeps its first flag, so set it before
   * send_local_reply (which would otherwise mark the stream "LR"); a flag set later, or after
   * another cause (the client left: "DC"), is ignored and SY_OK returned all the same.
   * SY_ERR_INVALID for any other name (the proxy's own causes cannot be claimed by a
   * filter); SY_ERR_STALE after the stream ended. */
  sy_status_t (*set_response_flag)(sy_stream_t* s, sy_str_t flag);

  /* -- Network filters: flow per direction and half-close (also since 1.2; check with
   * SY_HAS_SLOT(host, sy_host_t, conn_worker)). A connection's two directions flow and end
   * separately: SY_REQUEST is client -> upstream, SY_RESPONSE upstream -> client. A FIN from a
   * side reaches the filters as END_STREAM in that direction and, once through them, goes on to
   * the other side as a FIN; the other direction keeps flowing until it ends too (or
   * conn_close). From 1.2 on, a sy_conn_t* stays valid on its worker from on_connection_create
   * until on_connection_destroy returns, so worker timers, tasks and callout callbacks on that
   * worker may use it (calls after on_connection_close return SY_ERR_STALE); cancel what you
   * started in on_connection_destroy. -- */
  /* Passes on what FILTER (the object its on_connection_create returned) holds in DIR after
   * returning SY_STOP_AND_WATERMARK from on_data: the held bytes, as they now are, and a held
   * END_STREAM go to the next filter and on, in order, before any byte that arrives later.
   * From any callback on the connection's worker (a timer, a task, a callout's answer).
   * SY_ERR_WRONG_PHASE when FILTER holds nothing in DIR; SY_ERR_NOT_FOUND when FILTER is not
   * one of the connection's filters; SY_ERR_STALE after the connection closed. */
  sy_status_t (*conn_resume)(sy_conn_t* c, void* filter, sy_direction_t dir);
  /* PAUSED true stops reading from SIDE (SY_REQUEST: the client, SY_RESPONSE: the upstream),
   * so the peer is flow-controlled by TCP; false reads on (unless the host itself holds it back:
   * a full write queue, held bytes over the watermark). Bytes already read still arrive. */
  sy_status_t (*conn_pause_reading)(sy_conn_t* c, sy_direction_t side, bool paused);
  /* Half-close: ends DIR now, toward its destination (SY_REQUEST: the upstream gets a FIN after
   * the bytes already written to it), while the other direction keeps flowing. What filters
   * still hold in DIR is dropped, and DIR's later bytes are discarded (conn_inject toward it
   * returns SY_ERR_STALE). When both directions have ended, the connection closes. */
  sy_status_t (*conn_shutdown_write)(sy_conn_t* c, sy_direction_t dir);
  /* The connection's worker (the worker's own handle, as a post_to_worker task receives): for
   * worker_timer_drop, post_to_worker_drop and callouts that get back to the connection. */
  sy_worker_t* (*conn_worker)(sy_conn_t* c);

  /* The body taken over: a filter that re-writes a body as a stream of its own (ext_proc's
   * FULL_DUPLEX_STREAMED, a transcoder) lets the headers go before the body is done and then
   * alone decides what body follows them. The calling filter holds DIR's headers (its headers
   * callback returned a stop status, SY_STOP_AND_WATERMARK usually): they go on now, without
   * end of stream, as the head of a message with a body of unknown length (Content-Length
   * removed; HTTP/1.1 chunked). From then on nothing of DIR passes the filter by itself:
   * - each chunk of the original body (and its end) still reaches the filter's body callbacks
   *   and is held as under SY_STOP_AND_WATERMARK, whatever they return (the peer pauses while
   *   more than the high watermark is held): the filter takes it with body_get and body_drain
   *   (SY_BODY_BUFFERED, from any callback acting for it); bytes held before this call, or left
   *   held when the direction ends, are dropped unless the filter takes them;
   * - the next filters and the peer get only what the filter injects (inject_data): the
   *   direction ends with the filter's inject_data(..., END_STREAM = true) (the original's
   *   trailers, if any, are then dropped), or with resume(), which sends the original's
   *   trailers (held after the filter's trailers callback ran; edit them with header_* first)
   *   when they came, else an empty end of stream; input arriving after that is dropped.
   * Callable from a task, timer or callout callback acting for the filter, or from its own
   * body or trailers callback; not from its headers callback (nothing is held yet).
   * SY_ERR_WRONG_PHASE when the filter holds no headers of DIR (or took the body already);
   * SY_ERR_STALE after the stream ended. Since 1.2 (check with SY_HAS_SLOT(host, sy_host_t,
   * continue_headers_take_body)). */
  sy_status_t (*continue_headers_take_body)(sy_stream_t* s, sy_direction_t dir);
} sy_host_t;

/* ---- What a module provides ------------------------------------------------------------ */

/* A config rejection: the module writes a message (copied by the host before the callback
 * returns) that the proxy shows with the config's file:line:col. Since 1.0. */
typedef struct sy_error {
  char message[512];
} sy_error_t;

/* An HTTP filter factory. Any callback may be NULL. FILTER is what on_stream_create returned.
 * Callbacks run on the stream's worker. Since 1.0. */
typedef struct sy_http_filter {
  uint32_t size;    /* sizeof(sy_http_filter_t) */
  const char* name; /* factory name, chosen with `filter:` in the config */

  /* Main thread. JSON is the filter's `config:` block. Return a config object, or NULL and set
   * ERR to reject it. The object lives until on_config_destroy (after its last stream). */
  void* (*on_config_create)(void* module_data, sy_str_t json, sy_error_t* err);
  void (*on_config_destroy)(void* config);
  /* Main thread. A route's `per_filter:` block for this filter (not called for
   * `{disabled: true}`, which the host handles). */
  void* (*on_route_config_create)(void* module_data, sy_str_t json, sy_error_t* err);
  void (*on_route_config_destroy)(void* route_config);
  /* Worker. Per-worker state for CONFIG, if any. */
  void* (*on_worker_start)(void* config, sy_worker_t* worker);
  void (*on_worker_stop)(void* config, void* worker_data);

  /* Per stream. Return NULL to stay out of this stream. */
  void* (*on_stream_create)(void* config, sy_stream_t* s);
  sy_filter_status_t (*on_request_headers)(void* filter, sy_stream_t* s, bool end_stream);
  sy_filter_status_t (*on_request_body)(void* filter, sy_stream_t* s, bool end_stream);
  sy_filter_status_t (*on_request_trailers)(void* filter, sy_stream_t* s);
  sy_filter_status_t (*on_response_headers)(void* filter, sy_stream_t* s, bool end_stream);
  sy_filter_status_t (*on_response_body)(void* filter, sy_stream_t* s, bool end_stream);
  sy_filter_status_t (*on_response_trailers)(void* filter, sy_stream_t* s);
  /* The stream is over (access-log time): stream info and metadata are final. */
  void (*on_stream_complete)(void* filter, sy_stream_t* s);
  /* Last call for FILTER; the stream handle is no longer usable. */
  void (*on_stream_destroy)(void* filter);
  /* A queue registered from this config's worker has data. */
  void (*on_queue_ready)(void* config, void* worker_data, uint32_t queue_id);

  /* -- Since 1.2 (a host before 1.2 never calls it) -- */
  /* The stream's write buffer toward a peer crossed a watermark: DIR SY_RESPONSE is the buffer
   * of response bytes waiting to go to the client, SY_REQUEST that of request bytes waiting to
   * go upstream. ABOVE true: it passed the high watermark (256 KiB queued; the host stops
   * reading from the other side); false: it drained below the low watermark again. Each
   * direction alternates, starting with true. A filter that produces data itself (injects,
   * callouts) holds back while above. */
  void (*on_watermark)(void* filter, sy_stream_t* s, sy_direction_t dir, bool above);
} sy_http_filter_t;

/* A network (L4) filter factory on TCP proxy listeners. Since 1.0. */
typedef struct sy_network_filter {
  uint32_t size;
  const char* name;
  void* (*on_config_create)(void* module_data, sy_str_t json, sy_error_t* err);
  void (*on_config_destroy)(void* config);
  /* Return NULL to stay out of this connection. */
  void* (*on_connection_create)(void* config, sy_conn_t* c);
  /* Bytes from the client (SY_REQUEST) or the upstream (SY_RESPONSE), readable and replaceable
   * through conn_data_*. SY_CONTINUE passes them (as they now are) to the next filter and then
   * on; SY_STOP takes them out of the flow (the filter may write its own with conn_inject).
   * END_STREAM: that side closed (sent its FIN) after these bytes.
   * Since 1.2: SY_STOP_AND_WATERMARK holds the bytes (and END_STREAM) in DIR: nothing passes
   * this filter in DIR until it calls conn_resume. Bytes arriving meanwhile join the held ones
   * and on_data is called again with all of them, which it may again hold, pass or drop; the
   * host stops reading from the peer while what is held passes the high watermark (256 KiB)
   * and reads on below the low one (64 KiB), so memory stays bounded. Since 1.2 as well, an
   * END_STREAM dropped with SY_STOP still ends the direction (the bytes are dropped, not the
   * FIN), and the host passes a FIN on per direction instead of closing both sides at the
   * first one (see conn_shutdown_write). */
  sy_filter_status_t (*on_data)(void* filter, sy_conn_t* c, sy_direction_t dir, bool end_stream);
  void (*on_connection_close)(void* filter, sy_conn_t* c);
  void (*on_connection_destroy)(void* filter);

  /* -- Since 1.2 (a host before 1.2 never calls them) -- */
  /* Worker. Per-worker state for CONFIG, as for HTTP filters: W is this config's handle on the
   * worker, for worker_timer, callouts and queue_register. on_worker_start runs when CONFIG
   * arrives on the worker, before its connections there; on_worker_stop when CONFIG leaves the
   * worker (config change, swap; connections still using CONFIG go on) or the worker stops,
   * after W's timers were dropped. */
  void* (*on_worker_start)(void* config, sy_worker_t* w);
  void (*on_worker_stop)(void* config, void* worker_data);
  /* A queue registered with this config's W has data (see queue_register). */
  void (*on_queue_ready)(void* config, void* worker_data, uint32_t queue_id);
} sy_network_filter_t;

/* The module's descriptor, returned by the entry function; must stay valid until on_unload
 * returns (a static object is the usual way). Since 1.0. */
typedef struct sy_module_descriptor {
  uint32_t size;       /* sizeof(sy_module_descriptor_t) */
  uint16_t abi_major;  /* SY_ABI_MAJOR: must match the stamp */
  uint16_t abi_minor;  /* SY_ABI_MINOR: must match the stamp */
  const char* name;    /* must match the stamp */
  const char* version; /* must match the stamp */

  /* Main thread, once per generation, before any config. Return module-wide data (or NULL),
   * and true; false refuses the load (ERR says why). The loader may first run the entry and
   * on_load in a child process with a host of stubs, to catch a crash (the preflight,
   * docs/abi.md): keep effects outside the process out of both, or make them harmless to
   * repeat. */
  bool (*on_load)(sy_module_t* module, void** module_data, sy_error_t* err);
  /* Main thread, after the generation's last stream, timer and callout are gone. */
  void (*on_unload)(void* module_data);
  /* Hot swap hand-over, main thread: the old generation exports a blob, the new one receives
   * it after its on_load and before any of its configs is built. Either may be NULL. The
   * exported bytes stay the old generation's: they must be valid until on_handover_export
   * returns to the host, which copies them at once (a static buffer is fine). STATE is the
   * host's copy, valid during on_handover_import only. A rollback hands nothing over: the
   * previous generation still has its own state. */
  sy_str_t (*on_handover_export)(void* module_data);
  void (*on_handover_import)(void* module_data, sy_str_t state);

  const sy_http_filter_t* const* http_filters;       /* NULL-terminated list, or NULL */
  const sy_network_filter_t* const* network_filters; /* NULL-terminated list, or NULL */

  /* -- Since 1.2 (a host before 1.2 never calls it) -- */
  /* A queue registered with a worker's own handle W (a post_to_worker task's, or
   * stream_worker's), rather than a filter config's, has data: runs on W's thread with this
   * generation's module data. Not called once the generation is unloaded (a swap: the new
   * generation registers again to be told). */
  void (*on_queue_ready)(void* module_data, sy_worker_t* w, uint32_t queue_id);
} sy_module_descriptor_t;

/* The entry function's type. Return NULL to refuse to load. Since 1.0. */
typedef const sy_module_descriptor_t* (*sy_module_entry_fn)(const sy_host_t* host,
                                                            sy_module_t* module);

/* Declares the entry function with the right name, linkage and visibility:
 *   SY_MODULE_ENTRY(host, module) { ... return &descriptor; } */
#define SY_MODULE_ENTRY(HOST, MODULE)                                              \
  SY_EXTERN_C __attribute__((visibility("default"))) const sy_module_descriptor_t* \
  sy_module_entry_v1(const sy_host_t* HOST, sy_module_t* MODULE)

#ifdef __cplusplus
}
#endif

#endif /* SWITCHYARD_MODULE_H */
