/* A test-only module (built with the other fixtures into build/tests/abi/libsy_fx_attrs.so):
 * filter "attrs" copies stream-info attributes into response headers, so the integration
 * tests can see what filters see (test_tls.py).
 *
 *   x-attr-<name>: the attribute's value, CR and LF turned into spaces; other control bytes
 *                  make it "hex:" and the value in hexadecimal (a DER certificate, say);
 *                  "-" when the host has no such attribute for this stream.
 */
#include <stdio.h>
#include <string.h>
#include <switchyard/module.h>

SY_MODULE_STAMP("attrs", "1.0.0");

static const sy_host_t* host;

static const char* const kAttributes[][2] = {
    {"request.protocol", "x-attr-protocol"},
    {"request.scheme", "x-attr-scheme"},
    {"connection.tls_version", "x-attr-tls-version"},
    {"connection.requested_server_name", "x-attr-sni"},
    {"connection.peer_certificate", "x-attr-peer-certificate"},
    {"connection.subject_peer_certificate", "x-attr-subject-peer-certificate"},
};

static _Thread_local char buffer[1 << 16]; /* filters run on every worker */

static sy_str_t printable(sy_str_t v) {
  int binary = 0;
  for (size_t i = 0; i < v.len; i++) {
    unsigned char c = (unsigned char)v.ptr[i];
    if ((c < 0x20 && c != '\t' && c != '\r' && c != '\n') || c == 0x7f) binary = 1;
  }
  size_t n = 0;
  if (binary) {
    static const char kHex[] = "0123456789abcdef";
    memcpy(buffer, "hex:", 4);
    n = 4;
    for (size_t i = 0; i < v.len && n + 2 < sizeof buffer; i++) {
      buffer[n++] = kHex[((unsigned char)v.ptr[i]) >> 4];
      buffer[n++] = kHex[((unsigned char)v.ptr[i]) & 15];
    }
  } else {
    for (size_t i = 0; i < v.len && n < sizeof buffer; i++) {
      char c = v.ptr[i];
      buffer[n++] = (c == '\r' || c == '\n') ? ' ' : c;
    }
  }
  return (sy_str_t){buffer, n};
}

static void* on_config_create(void* module_data, sy_str_t json, sy_error_t* err) {
  (void)module_data;
  (void)json;
  (void)err;
  static int config;
  return &config;
}

static void* on_stream_create(void* config, sy_stream_t* s) {
  (void)s;
  return config;
}

static sy_filter_status_t on_response_headers(void* filter, sy_stream_t* s, bool end_stream) {
  (void)filter;
  (void)end_stream;
  for (size_t i = 0; i < sizeof kAttributes / sizeof kAttributes[0]; i++) {
    sy_str_t value = {0};
    const char* path = kAttributes[i][0];
    const char* header = kAttributes[i][1];
    sy_str_t name = {header, strlen(header)};
    if (host->attribute_get(s, (sy_str_t){path, strlen(path)}, &value) == SY_OK) {
      host->header_set(s, SY_RESPONSE_HEADERS, name, printable(value));
    } else {
      host->header_set(s, SY_RESPONSE_HEADERS, name, (sy_str_t){"-", 1});
    }
  }
  return SY_CONTINUE;
}

static const sy_http_filter_t kFilter = {
    .size = sizeof(sy_http_filter_t),
    .name = "attrs",
    .on_config_create = on_config_create,
    .on_stream_create = on_stream_create,
    .on_response_headers = on_response_headers,
};
static const sy_http_filter_t* const kFilters[] = {&kFilter, NULL};

static const sy_module_descriptor_t kDescriptor = {
    .size = sizeof(sy_module_descriptor_t),
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .name = "attrs",
    .version = "1.0.0",
    .http_filters = kFilters,
};

SY_MODULE_ENTRY(h, module) {
  (void)module;
  host = h;
  return &kDescriptor;
}
