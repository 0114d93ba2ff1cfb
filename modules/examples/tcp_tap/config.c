/* Parses and validates tcp_tap's config. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flat_json.h"
#include "tap.h"

/* The prefix goes in front of the first bytes of every connection: keep it small. */
#define TAP_MAX_PREFIX 1024

static bool on_member(void* ctx, const char* key, fj_kind_t kind, const char* value,
                      size_t value_len, char* err, size_t err_size) {
  tap_config_t* c = ctx;
  if (strcmp(key, "prefix") != 0) {
    snprintf(err, err_size, "tcp_tap: unknown config key '%s' (known: prefix)", key);
    return false;
  }
  if (kind != FJ_STRING) {
    snprintf(err, err_size, "tcp_tap: 'prefix' must be a string, got %s", value);
    return false;
  }
  if (value_len > TAP_MAX_PREFIX) {
    snprintf(err, err_size, "tcp_tap: 'prefix' is %zu bytes; at most %d are allowed", value_len,
             TAP_MAX_PREFIX);
    return false;
  }
  char* copy = malloc(value_len + 1);
  if (copy == NULL) {
    snprintf(err, err_size, "tcp_tap: out of memory");
    return false;
  }
  memcpy(copy, value, value_len + 1);
  free(c->prefix);
  c->prefix = copy;
  c->prefix_len = value_len;
  return true;
}

tap_config_t* tap_config_parse(tap_module_t* mod, sy_str_t json, sy_error_t* err) {
  tap_config_t* c = calloc(1, sizeof *c);
  char why[400];
  if (c == NULL) {
    snprintf(err->message, sizeof err->message, "tcp_tap: out of memory");
    return NULL;
  }
  c->mod = mod;
  if (!fj_parse(json.ptr, json.len, on_member, c, why, sizeof why)) {
    bool named = strncmp(why, "tcp_tap:", 8) == 0;
    snprintf(err->message, sizeof err->message, "%s%s (expected {\"prefix\": \"TAP:\"})",
             named ? "" : "tcp_tap: ", why);
    tap_config_free(c);
    return NULL;
  }
  return c;
}

void tap_config_free(tap_config_t* config) {
  if (config == NULL) return;
  free(config->prefix);
  free(config);
}
