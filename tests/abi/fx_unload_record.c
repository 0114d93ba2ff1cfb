/* Fixture: rejects every filter config, after noting the file its config names in `record`;
 * on_unload appends "unloaded" to that file. Proves that a start refused for a filter config
 * still releases the module generation and runs its on_unload. */
#include <string.h>

#include "fixture.h"

SY_MODULE_STAMP("fx_unload_record", "1.0.0");

typedef struct {
  char record[512];
} record_module_t;

static bool on_load(sy_module_t* module, void** module_data, sy_error_t* err) {
  (void)module;
  record_module_t* m = calloc(1, sizeof *m);
  if (m == NULL) {
    strcpy(err->message, "fx_unload_record: out of memory");
    return false;
  }
  *module_data = m;
  return true;
}

static void on_unload(void* module_data) {
  record_module_t* m = module_data;
  if (m->record[0]) {
    FILE* f = fopen(m->record, "a");
    if (f) {
      fputs("unloaded\n", f);
      fclose(f);
    }
  }
  free(m);
}

/* The config is {"record": "/some/path"}; the path has no quotes or escapes. */
static void* on_config_create(void* module_data, sy_str_t json, sy_error_t* err) {
  record_module_t* m = module_data;
  static const char key[] = "\"record\"";
  char text[1024];
  size_t n = json.len < sizeof text - 1 ? json.len : sizeof text - 1;
  memcpy(text, json.ptr, n);
  text[n] = '\0';
  const char* at = strstr(text, key);
  if (at) at = strchr(at + sizeof key - 1, '"');
  if (at) {
    at += 1;
    const char* end = strchr(at, '"');
    size_t len = end ? (size_t)(end - at) : 0;
    if (len < sizeof m->record) {
      memcpy(m->record, at, len);
      m->record[len] = '\0';
    }
  }
  strcpy(err->message, "fx_unload_record: rejects every config (this fixture always does)");
  return NULL;
}

static const sy_http_filter_t kFilter = {
    .size = sizeof(sy_http_filter_t),
    .name = "fx_unload_record",
    .on_config_create = on_config_create,
};
static const sy_http_filter_t* const kFilters[] = {&kFilter, NULL};

static const sy_module_descriptor_t kDescriptor = {
    .size = sizeof(sy_module_descriptor_t),
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .name = "fx_unload_record",
    .version = "1.0.0",
    .on_load = on_load,
    .on_unload = on_unload,
    .http_filters = kFilters,
};

SY_MODULE_ENTRY(host, module) {
  (void)host;
  (void)module;
  return &kDescriptor;
}
