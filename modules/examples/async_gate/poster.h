/* async_gate's background thread: resumes paused streams from outside the workers. */
#ifndef ASYNC_GATE_POSTER_H
#define ASYNC_GATE_POSTER_H

#include <stdbool.h>

#include "gate.h"

/* Starts the thread (main thread, from on_load). NULL on failure, with ERR set. */
gate_poster_t* gate_poster_start(gate_module_t* mod, sy_error_t* err);
/* Queues stream ID for the thread to resume. Any thread. False when out of memory. */
bool gate_poster_push(gate_poster_t* p, sy_stream_id_t id);
/* Stops and joins the thread, then frees P (main thread, from on_unload). */
void gate_poster_stop(gate_poster_t* p);

#endif /* ASYNC_GATE_POSTER_H */
