/* tcp_tap's per-connection logic: count bytes both ways, tag the first reply bytes. */
#include <stdlib.h>
#include <string.h>

#include "tap.h"

const sy_host_t* tap_host;

typedef struct tap_conn {
  const tap_config_t* config;
  bool tagged;
} tap_conn_t;

void* tap_connection_create(void* config, sy_conn_t* c) {
  (void)c;
  tap_conn_t* t = calloc(1, sizeof *t);
  if (t == NULL) return NULL; /* out of memory: stay out of this connection rather than fail it */
  t->config = config;
  tap_host->metric_add(t->config->mod->module, t->config->mod->m_connections, 1);
  return t;
}

/* Puts the prefix in front of DATA, the first bytes the upstream sent on this connection. */
static void tag(const tap_config_t* cfg, sy_conn_t* c, sy_str_t data) {
  size_t len = cfg->prefix_len + data.len;
  char* buf = malloc(len);
  if (buf == NULL) return; /* untagged beats a dropped connection */
  memcpy(buf, cfg->prefix, cfg->prefix_len);
  memcpy(buf + cfg->prefix_len, data.ptr, data.len);
  tap_host->conn_data_replace(c, SY_RESPONSE, (sy_str_t){buf, len});
  free(buf); /* the host copies what it is given */
}

sy_filter_status_t tap_data(void* filter, sy_conn_t* c, sy_direction_t dir, bool end_stream) {
  tap_conn_t* t = filter;
  const tap_config_t* cfg = t->config;
  sy_str_t data = {NULL, 0};
  (void)end_stream;
  if (tap_host->conn_data_get(c, dir, &data) != SY_OK) return SY_CONTINUE;
  uint32_t metric = dir == SY_REQUEST ? cfg->mod->m_bytes_in : cfg->mod->m_bytes_out;
  if (data.len > 0) tap_host->metric_add(cfg->mod->module, metric, (int64_t)data.len);
  if (dir == SY_RESPONSE && !t->tagged && data.len > 0) {
    t->tagged = true;
    if (cfg->prefix_len > 0) tag(cfg, c, data);
  }
  return SY_CONTINUE;
}

void tap_connection_destroy(void* filter) { free(filter); }
