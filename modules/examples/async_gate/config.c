/* Parses and validates async_gate's config. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flat_json.h"
#include "gate.h"

#define GATE_EXAMPLE \
  "{} (thread mode) or {\"mode\": \"callout\", \"cluster\": \"authz\", \"path\": \"/allow\"}"

typedef struct parse_state {
  gate_config_t* c;
  bool have_mode;
  char mode[16];
} parse_state_t;

static bool set_string(char** slot, size_t* slot_len, const char* v, size_t len) {
  char* copy = malloc(len + 1);
  if (copy == NULL) return false;
  memcpy(copy, v, len);
  copy[len] = '\0';
  free(*slot);
  *slot = copy;
  *slot_len = len;
  return true;
}

static bool on_member(void* ctx, const char* key, fj_kind_t kind, const char* value,
                      size_t value_len, char* err, size_t err_size) {
  parse_state_t* st = ctx;
  gate_config_t* c = st->c;
  if (strcmp(key, "mode") != 0 && strcmp(key, "cluster") != 0 && strcmp(key, "path") != 0 &&
      strcmp(key, "timeout_ms") != 0) {
    snprintf(err, err_size,
             "async_gate: unknown config key '%s' (known: mode, cluster, path, timeout_ms)", key);
    return false;
  }
  if (strcmp(key, "timeout_ms") == 0) {
    if (kind != FJ_NUMBER || !fj_uint(value, 600000, &c->timeout_ms) || c->timeout_ms == 0) {
      snprintf(err, err_size,
               "async_gate: 'timeout_ms' must be an integer from 1 to 600000, got %s", value);
      return false;
    }
    return true;
  }
  if (kind != FJ_STRING) {
    snprintf(err, err_size, "async_gate: '%s' must be a string, got %s", key, value);
    return false;
  }
  if (strcmp(key, "mode") == 0) {
    if (strcmp(value, "thread") != 0 && strcmp(value, "callout") != 0) {
      snprintf(err, err_size, "async_gate: 'mode' must be \"thread\" or \"callout\", got \"%.40s\"",
               value);
      return false;
    }
    st->have_mode = true;
    snprintf(st->mode, sizeof st->mode, "%s", value);
    return true;
  }
  bool ok = strcmp(key, "cluster") == 0 ? set_string(&c->cluster, &c->cluster_len, value, value_len)
                                        : set_string(&c->path, &c->path_len, value, value_len);
  if (!ok) snprintf(err, err_size, "async_gate: out of memory");
  return ok;
}

gate_config_t* gate_config_parse(gate_module_t* mod, sy_str_t json, sy_error_t* err) {
  gate_config_t* c = calloc(1, sizeof *c);
  if (c == NULL) {
    snprintf(err->message, sizeof err->message, "async_gate: out of memory");
    return NULL;
  }
  c->mod = mod;
  c->timeout_ms = 1000;
  parse_state_t st = {c, false, ""};
  char why[400];
  if (!fj_parse(json.ptr, json.len, on_member, &st, why, sizeof why)) {
    bool named = strncmp(why, "async_gate:", 11) == 0;
    snprintf(err->message, sizeof err->message, "%s%s (expected %s)",
             named ? "" : "async_gate: ", why, GATE_EXAMPLE);
    goto fail;
  }
  c->mode = st.have_mode && strcmp(st.mode, "callout") == 0 ? GATE_CALLOUT : GATE_THREAD;
  if (c->mode == GATE_THREAD) {
    if (c->cluster != NULL || c->path != NULL) {
      snprintf(err->message, sizeof err->message,
               "async_gate: 'cluster' and 'path' only apply to \"mode\": \"callout\"");
      goto fail;
    }
    return c;
  }
  if (c->cluster == NULL || c->cluster_len == 0) {
    snprintf(err->message, sizeof err->message,
             "async_gate: callout mode needs 'cluster' (the cluster to ask)");
    goto fail;
  }
  if (c->path == NULL && !set_string(&c->path, &c->path_len, "/allow", 6)) {
    snprintf(err->message, sizeof err->message, "async_gate: out of memory");
    goto fail;
  }
  if (c->path_len == 0 || c->path[0] != '/') {
    snprintf(err->message, sizeof err->message,
             "async_gate: 'path' must start with '/', got \"%.100s\"", c->path);
    goto fail;
  }
  return c;
fail:
  gate_config_free(c);
  return NULL;
}

void gate_config_free(gate_config_t* config) {
  if (config == NULL) return;
  free(config->cluster);
  free(config->path);
  free(config);
}
