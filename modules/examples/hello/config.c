/* Parses and validates hello's config. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flat_json.h"

static const char kExample[] = "{\"name\": \"x-hello\", \"value\": \"world\"}";

/* RFC 9110 token characters: what a header name may contain. */
static bool is_tchar(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Field values may hold visible bytes, spaces and tabs, but never CR, LF or NUL: those would
 * let a config inject headers. */
static bool valid_value(const char* v, size_t len) {
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)v[i];
    if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
  }
  return true;
}

static char* copy(const char* s, size_t len) {
  char* out = malloc(len + 1);
  if (out != NULL) {
    memcpy(out, s, len);
    out[len] = '\0';
  }
  return out;
}

static bool on_member(void* ctx, const char* key, fj_kind_t kind, const char* value,
                      size_t value_len, char* err, size_t err_size) {
  hello_config_t* c = ctx;
  char** slot;
  size_t* slot_len;
  if (strcmp(key, "name") == 0) {
    slot = &c->name;
    slot_len = &c->name_len;
  } else if (strcmp(key, "value") == 0) {
    slot = &c->value;
    slot_len = &c->value_len;
  } else {
    snprintf(err, err_size, "hello: unknown config key '%s' (known: name, value)", key);
    return false;
  }
  if (kind != FJ_STRING) {
    snprintf(err, err_size, "hello: '%s' must be a string, got %s", key, value);
    return false;
  }
  char* v = copy(value, value_len);
  if (v == NULL) {
    snprintf(err, err_size, "hello: out of memory");
    return false;
  }
  free(*slot);
  *slot = v;
  *slot_len = value_len;
  return true;
}

hello_config_t* hello_config_parse(sy_str_t json, sy_error_t* err) {
  hello_config_t* c = calloc(1, sizeof *c);
  char why[400];
  if (c == NULL) {
    snprintf(err->message, sizeof err->message, "hello: out of memory");
    return NULL;
  }
  if (!fj_parse(json.ptr, json.len, on_member, c, why, sizeof why)) {
    /* Messages from on_member already name the module; the reader's do not. */
    bool named = strncmp(why, "hello:", 6) == 0;
    snprintf(err->message, sizeof err->message, "%s%s (expected an object like %s)",
             named ? "" : "hello: ", why, kExample);
    goto fail;
  }
  if (c->name == NULL) {
    c->name_len = strlen("x-hello");
    c->name = copy("x-hello", c->name_len);
  }
  if (c->value == NULL) {
    c->value_len = strlen("world");
    c->value = copy("world", c->value_len);
  }
  if (c->name == NULL || c->value == NULL) {
    snprintf(err->message, sizeof err->message, "hello: out of memory");
    goto fail;
  }
  if (c->name_len == 0) {
    snprintf(err->message, sizeof err->message, "hello: 'name' must not be empty");
    goto fail;
  }
  for (size_t i = 0; i < c->name_len; i++) {
    if (!is_tchar((unsigned char)c->name[i])) {
      snprintf(err->message, sizeof err->message,
               "hello: 'name' is not a valid header name: '%.100s' has an invalid character at "
               "position %zu (allowed: letters, digits and !#$%%&'*+-.^_`|~)",
               c->name, i + 1);
      goto fail;
    }
  }
  if (!valid_value(c->value, c->value_len)) {
    snprintf(err->message, sizeof err->message,
             "hello: 'value' must not contain control characters (CR, LF, NUL, ...)");
    goto fail;
  }
  return c;
fail:
  hello_config_free(c);
  return NULL;
}

void hello_config_free(hello_config_t* config) {
  if (config == NULL) return;
  free(config->name);
  free(config->value);
  free(config);
}
