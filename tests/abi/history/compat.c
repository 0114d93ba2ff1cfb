/* The compatibility-matrix module: built once against each frozen header in abi/history/<ver>/,
 * every build must load and work on today's host. It uses only what ABI 1.0 offered, since it
 * is compiled against the oldest header too, and every table it hands the host (descriptor,
 * HTTP filter, network filter) has the size of that header's struct, not of today's.
 *
 * - HTTP filter `compat`: adds `x-compat-abi: <major>.<minor>` (the ABI of the headers it was
 *   built with) to responses, and `x-compat-request: <major>.<minor>` to requests (the upstream
 *   echoes it back), so both directions of the chain call into it.
 * - Network filter `compat_tcp`: writes `COMPAT <major>.<minor>\n` to the client before the
 *   upstream's first bytes.
 * - on_load / on_unload: module data lives from one to the other. */
#include <stdio.h>
#include <stdlib.h>
#include <switchyard/module.h>

#ifndef COMPAT_HEADERS
#error "build with -DCOMPAT_HEADERS=\"<abi/history directory name>\""
#endif

SY_MODULE_STAMP("compat", COMPAT_HEADERS);

static const sy_host_t* host;
static char abi_text[16];
static size_t abi_len;

typedef struct {
  int loaded; /* set by on_load: the host handed the filters the module data it returned */
} compat_module_t;

static bool on_load(sy_module_t* module, void** module_data, sy_error_t* err) {
  (void)module;
  compat_module_t* m = calloc(1, sizeof *m);
  if (m == NULL) {
    snprintf(err->message, sizeof err->message, "compat: out of memory");
    return false;
  }
  m->loaded = 1;
  *module_data = m;
  return true;
}

static void on_unload(void* module_data) { free(module_data); }

static void* on_config_create(void* module_data, sy_str_t json, sy_error_t* err) {
  (void)json;
  compat_module_t* m = module_data;
  if (m == NULL || !m->loaded) {
    snprintf(err->message, sizeof err->message, "compat: no module data from on_load");
    return NULL;
  }
  return m;
}

static void* on_stream_create(void* config, sy_stream_t* s) {
  (void)s;
  return config;
}

static sy_filter_status_t on_request_headers(void* filter, sy_stream_t* s, bool end_stream) {
  (void)filter;
  (void)end_stream;
  host->header_set(s, SY_REQUEST_HEADERS, (sy_str_t){"x-compat-request", 16},
                   (sy_str_t){abi_text, abi_len});
  return SY_CONTINUE;
}

static sy_filter_status_t on_response_headers(void* filter, sy_stream_t* s, bool end_stream) {
  (void)filter;
  (void)end_stream;
  host->header_set(s, SY_RESPONSE_HEADERS, (sy_str_t){"x-compat-abi", 12},
                   (sy_str_t){abi_text, abi_len});
  return SY_CONTINUE;
}

static const sy_http_filter_t kFilter = {
    .size = sizeof(sy_http_filter_t),
    .name = "compat",
    .on_config_create = on_config_create,
    .on_stream_create = on_stream_create,
    .on_request_headers = on_request_headers,
    .on_response_headers = on_response_headers,
};
static const sy_http_filter_t* const kFilters[] = {&kFilter, NULL};

/* Per connection: whether the greeting went out yet. */
static void* on_connection_create(void* config, sy_conn_t* c) {
  (void)config;
  (void)c;
  return calloc(1, sizeof(int));
}

static sy_filter_status_t on_data(void* filter, sy_conn_t* c, sy_direction_t dir, bool end_stream) {
  (void)end_stream;
  int* greeted = filter;
  if (dir == SY_RESPONSE && !*greeted) {
    char line[32];
    int n = snprintf(line, sizeof line, "COMPAT %s\n", abi_text);
    host->conn_inject(c, SY_RESPONSE, (sy_str_t){line, n > 0 ? (size_t)n : 0});
    *greeted = 1;
  }
  return SY_CONTINUE;
}

static void on_connection_destroy(void* filter) { free(filter); }

static const sy_network_filter_t kNetworkFilter = {
    .size = sizeof(sy_network_filter_t),
    .name = "compat_tcp",
    .on_config_create = on_config_create,
    .on_connection_create = on_connection_create,
    .on_data = on_data,
    .on_connection_destroy = on_connection_destroy,
};
static const sy_network_filter_t* const kNetworkFilters[] = {&kNetworkFilter, NULL};

static const sy_module_descriptor_t kDescriptor = {
    .size = sizeof(sy_module_descriptor_t),
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .name = "compat",
    .version = COMPAT_HEADERS,
    .on_load = on_load,
    .on_unload = on_unload,
    .http_filters = kFilters,
    .network_filters = kNetworkFilters,
};

SY_MODULE_ENTRY(h, module) {
  (void)module;
  host = h;
  int n = snprintf(abi_text, sizeof abi_text, "%d.%d", SY_ABI_MAJOR, SY_ABI_MINOR);
  abi_len = n > 0 ? (size_t)n : 0;
  return &kDescriptor;
}
