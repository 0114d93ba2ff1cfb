/* tcp_tap's shared types: module-wide counters, config, and the per-connection callbacks. */
#ifndef TCP_TAP_TAP_H
#define TCP_TAP_TAP_H

#include <switchyard/module.h>

typedef struct tap_module {
  sy_module_t* module;
  uint32_t m_bytes_in;  /* client -> upstream */
  uint32_t m_bytes_out; /* upstream -> client, before tagging */
  uint32_t m_connections;
} tap_module_t;

typedef struct tap_config {
  tap_module_t* mod;
  char* prefix; /* "" = count only */
  size_t prefix_len;
} tap_config_t;

/* The host's table, set by the entry function. */
extern const sy_host_t* tap_host;

/* config.c */
tap_config_t* tap_config_parse(tap_module_t* mod, sy_str_t json, sy_error_t* err);
void tap_config_free(tap_config_t* config);

/* filter.c */
void* tap_connection_create(void* config, sy_conn_t* c);
sy_filter_status_t tap_data(void* filter, sy_conn_t* c, sy_direction_t dir, bool end_stream);
void tap_connection_destroy(void* filter);

#endif /* TCP_TAP_TAP_H */
