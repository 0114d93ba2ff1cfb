/* The Proxy-Wasm 0.2.1 host functions and callbacks the test filters use, written from the
 * spec (proxy-wasm/spec abi-versions/v0.2.1). For clang --target=wasm32-wasi. */
#ifndef SY_TEST_PROXY_WASM_H
#define SY_TEST_PROXY_WASM_H

#include <stddef.h>
#include <stdint.h>

#define IMPORT(name) __attribute__((import_module("env"), import_name(#name)))
#define EXPORT(name) __attribute__((export_name(#name)))

enum {
  OK = 0,
  NOT_FOUND = 1,
  BAD_ARGUMENT = 2,
  INVALID_MEMORY_ACCESS = 6,
  EMPTY = 7,
  CAS_MISMATCH = 8
};
enum { LOG_TRACE, LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_CRITICAL };
enum {
  REQUEST_BODY = 0,
  RESPONSE_BODY = 1,
  HTTP_CALL_RESPONSE_BODY = 4,
  GRPC_MESSAGE = 5,
  DOWNSTREAM_DATA = 2,
  UPSTREAM_DATA = 3,
  VM_CONFIGURATION = 6,
  PLUGIN_CONFIGURATION = 7
};
enum {
  REQUEST_HEADERS = 0,
  REQUEST_TRAILERS = 1,
  RESPONSE_HEADERS = 2,
  RESPONSE_TRAILERS = 3,
  HTTP_CALL_RESPONSE_HEADERS = 6
};
enum { CONTINUE = 0, PAUSE = 1 };
/* proxy_continue_stream / proxy_close_stream's stream types. */
enum { STREAM_REQUEST = 0, STREAM_RESPONSE = 1, STREAM_DOWNSTREAM = 2, STREAM_UPSTREAM = 3 };

IMPORT(proxy_log) int proxy_log(int level, const char* msg, size_t len);
IMPORT(proxy_set_tick_period_milliseconds) int proxy_set_tick_period_milliseconds(uint32_t ms);
IMPORT(proxy_set_effective_context) int proxy_set_effective_context(uint32_t id);
IMPORT(proxy_get_buffer_bytes)
int proxy_get_buffer_bytes(int type, uint32_t start, uint32_t max, char** ptr, size_t* size);
IMPORT(proxy_set_buffer_bytes)
int proxy_set_buffer_bytes(int type, uint32_t start, uint32_t size, const char* data, size_t len);
IMPORT(proxy_get_header_map_value)
int proxy_get_header_map_value(int type, const char* key, size_t klen, char** val, size_t* vlen);
IMPORT(proxy_add_header_map_value)
int proxy_add_header_map_value(int type, const char* key, size_t klen, const char* val,
                               size_t vlen);
IMPORT(proxy_replace_header_map_value)
int proxy_replace_header_map_value(int type, const char* key, size_t klen, const char* val,
                                   size_t vlen);
IMPORT(proxy_remove_header_map_value)
int proxy_remove_header_map_value(int type, const char* key, size_t klen);
IMPORT(proxy_continue_stream) int proxy_continue_stream(int type);
IMPORT(proxy_call_foreign_function)
int proxy_call_foreign_function(const char* name, size_t name_len, const char* args,
                                size_t args_len, char** result, size_t* result_len);
IMPORT(proxy_close_stream) int proxy_close_stream(int type);
IMPORT(proxy_send_local_response)
int proxy_send_local_response(uint32_t status, const char* details, size_t dlen, const char* body,
                              size_t blen, const char* headers, size_t hlen, int32_t grpc_status);
IMPORT(proxy_get_property)
int proxy_get_property(const char* path, size_t plen, char** val, size_t* vlen);
IMPORT(proxy_get_shared_data)
int proxy_get_shared_data(const char* key, size_t klen, char** val, size_t* vlen, uint32_t* cas);
IMPORT(proxy_set_shared_data)
int proxy_set_shared_data(const char* key, size_t klen, const char* val, size_t vlen, uint32_t cas);
IMPORT(proxy_register_shared_queue)
int proxy_register_shared_queue(const char* name, size_t len, uint32_t* id);
IMPORT(proxy_resolve_shared_queue)
int proxy_resolve_shared_queue(const char* vm_id, size_t vlen, const char* name, size_t nlen,
                               uint32_t* id);
IMPORT(proxy_enqueue_shared_queue)
int proxy_enqueue_shared_queue(uint32_t id, const char* data, size_t len);
IMPORT(proxy_dequeue_shared_queue)
int proxy_dequeue_shared_queue(uint32_t id, char** data, size_t* len);
IMPORT(proxy_define_metric)
int proxy_define_metric(int type, const char* name, size_t len, uint32_t* id);
IMPORT(proxy_increment_metric) int proxy_increment_metric(uint32_t id, int64_t delta);
IMPORT(proxy_http_call)
int proxy_http_call(const char* up, size_t ulen, const char* hdrs, size_t hlen, const char* body,
                    size_t blen, const char* trl, size_t tlen, uint32_t timeout_ms,
                    uint32_t* token);
IMPORT(proxy_grpc_call)
int proxy_grpc_call(const char* service, size_t slen, const char* svc_name, size_t svlen,
                    const char* method, size_t mlen, const char* md, size_t mdlen, const char* msg,
                    size_t msglen, uint32_t timeout_ms, uint32_t* token);
IMPORT(proxy_get_status) int proxy_get_status(uint32_t* code, char** msg, size_t* len);

#endif
