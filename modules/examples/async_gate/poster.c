/* async_gate's background thread: takes stream ids from the workers, waits about a
 * millisecond (standing in for real work elsewhere: a lookup, a disk read), and hands each
 * stream back to its worker with post_to_stream, the only call the ABI allows from here. */
#define _POSIX_C_SOURCE 200809L

#include "poster.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct gate_item {
  sy_stream_id_t id;
  struct gate_item* next;
} gate_item_t;

struct gate_poster {
  gate_module_t* mod;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  gate_item_t* head; /* FIFO, guarded by MU */
  gate_item_t* tail;
  bool stopping;
};

static void free_items(gate_item_t* it) {
  while (it != NULL) {
    gate_item_t* next = it->next;
    free(it);
    it = next;
  }
}

static void* run(void* arg) {
  gate_poster_t* p = arg;
  const struct timespec one_ms = {0, 1000 * 1000};
  for (;;) {
    pthread_mutex_lock(&p->mu);
    while (!p->stopping && p->head == NULL) pthread_cond_wait(&p->cv, &p->mu);
    if (p->stopping) {
      pthread_mutex_unlock(&p->mu);
      return NULL;
    }
    gate_item_t* batch = p->head;
    p->head = p->tail = NULL;
    pthread_mutex_unlock(&p->mu);

    nanosleep(&one_ms, NULL);
    for (gate_item_t* it = batch; it != NULL; it = it->next) {
      /* A stream that ended meanwhile (the client went away) is detected by the host, which
       * then calls the drop function instead of the task. */
      gate_host->post_to_stream(it->id, gate_resume_from_thread, gate_post_dropped, p->mod);
    }
    free_items(batch);
  }
}

gate_poster_t* gate_poster_start(gate_module_t* mod, sy_error_t* err) {
  gate_poster_t* p = calloc(1, sizeof *p);
  if (p == NULL) {
    snprintf(err->message, sizeof err->message, "async_gate: out of memory");
    return NULL;
  }
  p->mod = mod;
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->cv, NULL);
  /* The thread inherits this mask: signals stay with the proxy's own threads. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  int rc = pthread_create(&p->thread, NULL, run, p);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc != 0) {
    snprintf(err->message, sizeof err->message, "async_gate: cannot start its thread: %s",
             strerror(rc));
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
    return NULL;
  }
  return p;
}

bool gate_poster_push(gate_poster_t* p, sy_stream_id_t id) {
  gate_item_t* it = malloc(sizeof *it);
  if (it == NULL) return false;
  it->id = id;
  it->next = NULL;
  pthread_mutex_lock(&p->mu);
  if (p->tail != NULL) {
    p->tail->next = it;
  } else {
    p->head = it;
  }
  p->tail = it;
  pthread_cond_signal(&p->cv);
  pthread_mutex_unlock(&p->mu);
  return true;
}

void gate_poster_stop(gate_poster_t* p) {
  if (p == NULL) return;
  pthread_mutex_lock(&p->mu);
  p->stopping = true;
  pthread_cond_signal(&p->cv);
  pthread_mutex_unlock(&p->mu);
  pthread_join(p->thread, NULL);
  /* on_unload comes after the generation's last stream, so nothing should be queued. Anything
   * that is must not be posted now: a post would point the host at code about to be unmapped. */
  free_items(p->head);
  pthread_cond_destroy(&p->cv);
  pthread_mutex_destroy(&p->mu);
  free(p);
}
