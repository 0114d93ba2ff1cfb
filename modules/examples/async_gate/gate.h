/* async_gate's shared types: module-wide state, config, and what each file provides. */
#ifndef ASYNC_GATE_GATE_H
#define ASYNC_GATE_GATE_H

#include <switchyard/module.h>

typedef struct gate_poster gate_poster_t;

/* One per generation, made in on_load and freed in on_unload. */
typedef struct gate_module {
  sy_module_t* module;
  gate_poster_t* poster;
  uint32_t m_resumed_by_thread; /* counters, see README.md */
  uint32_t m_callout_allowed;
  uint32_t m_callout_denied;
  uint32_t m_callout_failed;
  uint32_t m_posts_dropped;
} gate_module_t;

typedef enum gate_mode { GATE_THREAD = 0, GATE_CALLOUT = 1 } gate_mode_t;

typedef struct gate_config {
  gate_module_t* mod;
  gate_mode_t mode;
  char* cluster; /* callout mode: where to ask */
  size_t cluster_len;
  char* path; /* callout mode: what to ask for */
  size_t path_len;
  uint64_t timeout_ms;
} gate_config_t;

/* The host's table, set by the entry function. */
extern const sy_host_t* gate_host;

/* config.c */
gate_config_t* gate_config_parse(gate_module_t* mod, sy_str_t json, sy_error_t* err);
void gate_config_free(gate_config_t* config);

/* filter.c */
void* gate_stream_create(void* config, sy_stream_t* s);
sy_filter_status_t gate_request_headers(void* filter, sy_stream_t* s, bool end_stream);
/* The task the background thread posts for each paused stream, and its drop. */
void gate_resume_from_thread(sy_stream_t* s, void* arg);
void gate_post_dropped(void* arg);

#endif /* ASYNC_GATE_GATE_H */
