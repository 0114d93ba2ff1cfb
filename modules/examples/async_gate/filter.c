/* async_gate's per-stream logic: pause every request, resume it from elsewhere. */
#include <stdlib.h>

#include "gate.h"
#include "poster.h"

#define STR(s) ((sy_str_t){(s), sizeof(s) - 1})

const sy_host_t* gate_host;

/* What a callout carries back: the stream's id, never its handle. The callout callback gets no
 * stream, and a stream handle is only valid inside that stream's callbacks, so the verdict goes
 * back to the stream through post_to_stream like any other asynchronous result. */
typedef struct gate_callout {
  sy_stream_id_t id;
  gate_module_t* mod;
} gate_callout_t;

/* No per-stream state: the config stands in for the filter object. */
void* gate_stream_create(void* config, sy_stream_t* s) {
  (void)s;
  return config;
}

static void count(gate_module_t* mod, uint32_t metric) {
  gate_host->metric_add(mod->module, metric, 1);
}

/* The tasks count before they act: once the stream goes on, its client may see the response
 * (and read the counters) before the task has returned. */
void gate_resume_from_thread(sy_stream_t* s, void* arg) {
  gate_module_t* mod = arg;
  count(mod, mod->m_resumed_by_thread);
  gate_host->header_add(s, SY_REQUEST_HEADERS, STR("x-gate"), STR("thread"));
  gate_host->resume(s, SY_REQUEST);
}

void gate_post_dropped(void* arg) {
  gate_module_t* mod = arg;
  count(mod, mod->m_posts_dropped);
}

static void allow(sy_stream_t* s, void* arg) {
  gate_module_t* mod = arg;
  count(mod, mod->m_callout_allowed);
  gate_host->header_add(s, SY_REQUEST_HEADERS, STR("x-gate"), STR("callout"));
  gate_host->resume(s, SY_REQUEST);
}

static void deny(sy_stream_t* s, void* arg) {
  gate_module_t* mod = arg;
  count(mod, mod->m_callout_denied);
  gate_host->send_local_reply(s, 403, NULL, 0, STR("denied by async_gate\n"), STR("gate_denied"));
}

static void on_callout_reply(void* arg, const sy_callout_response_t* resp) {
  gate_callout_t* c = arg;
  if (resp->status == 0) count(c->mod, c->mod->m_callout_failed);
  gate_host->post_to_stream(c->id, resp->status == 200 ? allow : deny, gate_post_dropped, c->mod);
  free(c);
}

static sy_filter_status_t unavailable(sy_stream_t* s, const char* details, size_t len) {
  gate_host->send_local_reply(s, 503, NULL, 0, STR("async_gate unavailable\n"),
                              (sy_str_t){details, len});
  return SY_STOP;
}

static sy_filter_status_t ask_cluster(const gate_config_t* cfg, sy_stream_t* s) {
  gate_callout_t* c = malloc(sizeof *c);
  if (c == NULL) return unavailable(s, "gate_out_of_memory", 18);
  c->id = gate_host->stream_id(s);
  c->mod = cfg->mod;
  /* The gate sees which path is asked for, as an authorization server would want to. */
  sy_str_t original = {"", 0};
  gate_host->header_get(s, SY_REQUEST_HEADERS, STR(":path"), 0, &original);
  const sy_header_t headers[] = {
      {STR(":method"), STR("GET")},
      {STR(":path"), {cfg->path, cfg->path_len}},
      {STR("x-original-path"), original},
  };
  sy_status_t st = gate_host->http_callout(s, NULL, (sy_str_t){cfg->cluster, cfg->cluster_len},
                                           headers, sizeof headers / sizeof headers[0],
                                           (sy_str_t){"", 0}, cfg->timeout_ms, on_callout_reply, c);
  if (st != SY_OK) {
    free(c);
    count(cfg->mod, cfg->mod->m_callout_failed);
    return unavailable(s, "gate_callout_failed", 19);
  }
  return SY_STOP;
}

sy_filter_status_t gate_request_headers(void* filter, sy_stream_t* s, bool end_stream) {
  const gate_config_t* cfg = filter;
  (void)end_stream;
  if (cfg->mode == GATE_CALLOUT) return ask_cluster(cfg, s);
  if (!gate_poster_push(cfg->mod->poster, gate_host->stream_id(s)))
    return unavailable(s, "gate_out_of_memory", 18);
  /* The post cannot overtake this return: it runs on this worker, after this callback. */
  return SY_STOP;
}
