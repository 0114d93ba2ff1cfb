/* Fuzz target: the flat JSON reader the C example modules read their config with
 * (modules/examples/common/flat_json.h). Written in C, as its users are. Every member it hands
 * over must be what it promised: a NUL-terminated key, and a value of the length it says. */
#include "modules/examples/common/flat_json.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static bool check_member(void* ctx, const char* key, fj_kind_t kind, const char* value,
                         size_t value_len, char* err, size_t err_size) {
  size_t input_len = *(size_t*)ctx;
  size_t key_len = strlen(key);
  if (key_len > input_len || value_len > input_len || value[value_len] != '\0') abort();
  if (kind != FJ_STRING && strlen(value) != value_len) abort();
  if (kind == FJ_NUMBER) {
    uint64_t v;
    fj_uint(value, UINT64_MAX, &v);
    fj_uint(value, 1000, &v);
  }
  /* Half the keys are refused, so the error path after a callback runs too. */
  if (key_len % 2 == 1) {
    snprintf(err, err_size, "config: '%s' is not known", key);
    return false;
  }
  return true;
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  char err[256];
  err[0] = '\0';
  size_t len = size;
  /* Not NUL-terminated: the host hands over {ptr, len}, and the reader must not read past it. */
  bool ok = fj_parse((const char*)data, size, check_member, &len, err, sizeof err);
  if (!ok && err[0] == '\0') abort();
  return 0;
}
