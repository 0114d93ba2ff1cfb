/* sy-openloop: an open-loop HTTP/1.1 load generator that measures latency from the time each
 * request was meant to be sent, not from the time it was sent.
 *
 * A closed-loop client (wrk) sends the next request when the last answer arrives, so a stall in
 * the server also stalls the client, and the requests it would have sent during the stall are
 * never timed ("coordinated omission"). Here every connection has a fixed schedule: request k
 * is due at start + offset + k * interval. If the connection is still waiting for an answer
 * when a request falls due, that request goes out late, and its latency still counts from when
 * it was due. The model is wrk2's; the code is ours.
 *
 * One thread, non-blocking sockets, epoll with a nanosecond timeout (epoll_pwait2) and a 1 ns
 * timer slack, so that a send is not late because of the generator's own timer resolution.
 *
 *   sy-openloop --port P --path /small --rate R --duration S [--connections C]
 *               [--host 127.0.0.1] [--expect-bytes N] [--expect-header 'name: value']
 *               [--drain-ms 2000] [--body-bytes N]
 *
 * --body-bytes N sends POST with an N-byte body (Content-Length) instead of GET: the request
 * then no longer fits a default socket buffer, so each connection's send buffer is raised to
 * hold a whole request, and one write still does it (a short write counts as an error).
 *
 * Prints one JSON object on stdout: counts (sent, completed, errors by kind), the latency
 * percentiles in microseconds, and how late sends were against their schedule (send_lag), which
 * says whether the generator itself kept up. Exit status 0 if it ran, 2 on bad usage.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF_SIZE (256 * 1024)

enum parse_state {
  ST_HEAD,
  ST_BODY_LENGTH,
  ST_CHUNK_SIZE,
  ST_CHUNK_DATA,
  ST_CHUNK_CRLF,
  ST_TRAILERS,
  ST_DONE
};

struct conn {
  int fd;
  int busy;          /* a request is in flight */
  uint64_t next_due; /* ns, CLOCK_MONOTONIC: when the next request is due */
  uint64_t due;      /* when the request in flight was due */
  char* buf;         /* unparsed response bytes */
  size_t len;
  enum parse_state state;
  int status;
  int header_ok;     /* the expected header was seen (or none expected) */
  int64_t remaining; /* body bytes left (length or current chunk) */
  int64_t body_bytes;
  int close_after; /* the server said Connection: close */
};

static struct {
  const char *host, *path, *expect_header;
  int port, connections;
  double rate, duration;
  int64_t expect_bytes;
  uint64_t drain_ns;
  long body_bytes;
} opt = {"127.0.0.1", "/", NULL, 0, 64, 0, 0, -1, 2000000000ull, 0};

static struct {
  uint64_t sent, completed, bad_status, bad_body, bad_header, conn_errors, closed, timeouts;
  uint64_t *lat, *lag; /* ns, one per completed request / per sent request */
  size_t nlat, nlag, cap;
} st;

static char* request_bytes;
static size_t request_len;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die_usage(const char* msg) {
  fprintf(stderr, "sy-openloop: %s\n", msg);
  exit(2);
}

static int connect_to(void) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (opt.body_bytes > 0) { /* room for a whole request, twice over (see --body-bytes) */
    int size = (int)(2 * request_len + 65536);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  }
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opt.port)};
  inet_pton(AF_INET, opt.host, &a.sin_addr);
  if (connect(fd, (struct sockaddr*)&a, sizeof a) != 0 && errno != EINPROGRESS) {
    close(fd);
    return -1;
  }
  return fd;
}

static void reset_parse(struct conn* c) {
  c->state = ST_HEAD;
  c->status = 0;
  c->header_ok = opt.expect_header == NULL;
  c->remaining = 0;
  c->body_bytes = 0;
  c->close_after = 0;
}

/* Case-insensitive "name: value" match of one header line against --expect-header. */
static int header_matches(const char* line, size_t n) {
  const char* want = opt.expect_header;
  const char* colon = strchr(want, ':');
  size_t name_len = (size_t)(colon - want);
  if (n <= name_len || strncasecmp(line, want, name_len) != 0 || line[name_len] != ':') return 0;
  const char *v = line + name_len + 1, *end = line + n;
  const char* wv = colon + 1;
  while (v < end && (*v == ' ' || *v == '\t')) v++;
  while (*wv == ' ') wv++;
  return (size_t)(end - v) == strlen(wv) && strncmp(v, wv, (size_t)(end - v)) == 0;
}

/* Whether the N bytes at S contain the token "close", in any case. */
static int contains_close(const char* s, size_t n) {
  for (size_t i = 0; i + 5 <= n; i++)
    if (strncasecmp(s + i, "close", 5) == 0) return 1;
  return 0;
}

/* Consumes what it can of c->buf. Returns 1 when a full response has been parsed, 0 when more
 * bytes are needed, -1 on a malformed response. */
static int parse(struct conn* c) {
  size_t pos = 0;
  int result = 0;
  while (result == 0) {
    if (c->state == ST_HEAD || c->state == ST_CHUNK_SIZE || c->state == ST_CHUNK_CRLF ||
        c->state == ST_TRAILERS) {
      char* nl = memchr(c->buf + pos, '\n', c->len - pos);
      if (!nl) break;
      size_t n = (size_t)(nl - (c->buf + pos));
      char* line = c->buf + pos;
      if (n > 0 && line[n - 1] == '\r') n--;
      pos = (size_t)(nl - c->buf) + 1;
      if (c->state == ST_HEAD) {
        if (c->status == 0) {
          if (n < 12 || strncmp(line, "HTTP/1.", 7) != 0) return -1;
          c->status = atoi(line + 9);
          c->remaining = -1;
        } else if (n == 0) {
          if (c->state == ST_HEAD && c->remaining == -2) {
            c->state = ST_CHUNK_SIZE;
          } else if (c->remaining >= 0) {
            c->state = c->remaining > 0 ? ST_BODY_LENGTH : ST_DONE;
          } else {
            return -1; /* a body delimited by close: not what a keep-alive benchmark expects */
          }
        } else {
          if (n > 15 && strncasecmp(line, "content-length:", 15) == 0) {
            if (c->remaining != -2) c->remaining = strtoll(line + 15, NULL, 10);
          } else if (n > 18 && strncasecmp(line, "transfer-encoding:", 18) == 0) {
            c->remaining = -2;
          } else if (n > 11 && strncasecmp(line, "connection:", 11) == 0 &&
                     contains_close(line + 11, n - 11)) {
            c->close_after = 1;
          }
          if (!c->header_ok && header_matches(line, n)) c->header_ok = 1;
        }
      } else if (c->state == ST_CHUNK_SIZE) {
        c->remaining = strtoll(line, NULL, 16);
        c->state = c->remaining > 0 ? ST_CHUNK_DATA : ST_TRAILERS;
      } else if (c->state == ST_CHUNK_CRLF) {
        if (n != 0) return -1;
        c->state = ST_CHUNK_SIZE;
      } else if (n == 0) { /* ST_TRAILERS: an empty line ends them */
        c->state = ST_DONE;
      }
    } else if (c->state == ST_BODY_LENGTH || c->state == ST_CHUNK_DATA) {
      size_t avail = c->len - pos;
      size_t take = avail < (size_t)c->remaining ? avail : (size_t)c->remaining;
      pos += take;
      c->remaining -= (int64_t)take;
      c->body_bytes += (int64_t)take;
      if (c->remaining > 0) break;
      c->state = c->state == ST_BODY_LENGTH ? ST_DONE : ST_CHUNK_CRLF;
    }
    if (c->state == ST_DONE) result = 1;
  }
  memmove(c->buf, c->buf + pos, c->len - pos);
  c->len -= pos;
  return result;
}

static void record(uint64_t** arr, size_t* n, uint64_t v) {
  if (*n < st.cap) (*arr)[(*n)++] = v;
}

static void drop_conn(struct conn* c, int epfd) {
  if (c->fd >= 0) {
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
  }
  c->fd = -1;
  c->busy = 0;
  c->len = 0;
}

static int open_conn(struct conn* c, int epfd) {
  c->fd = connect_to();
  if (c->fd < 0) return -1;
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
  epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
  return 0;
}

static void send_request(struct conn* c, int epfd, uint64_t now) {
  if (c->fd < 0 && open_conn(c, epfd) != 0) {
    st.conn_errors++;
    c->next_due += (uint64_t)(1e9 * opt.connections / opt.rate);
    return;
  }
  /* A GET is ~100 bytes: it fits any socket buffer (a POST's buffer is raised to fit it, see
   * connect_to), so one write does it or the connection is broken. A connection still connecting
   * takes the write once connected (EAGAIN is not returned for a connecting socket's first small
   * write on Linux loopback; treat it as an error if it happens so that nothing is silently lost).
   */
  ssize_t w = send(c->fd, request_bytes, request_len, MSG_NOSIGNAL);
  if (w != (ssize_t)request_len) {
    st.conn_errors++;
    drop_conn(c, epfd);
    c->next_due += (uint64_t)(1e9 * opt.connections / opt.rate);
    return;
  }
  st.sent++;
  record(&st.lag, &st.nlag, now - c->next_due);
  c->due = c->next_due;
  c->busy = 1;
  c->next_due += (uint64_t)(1e9 * opt.connections / opt.rate);
  reset_parse(c);
}

static int cmp_u64(const void* a, const void* b) {
  uint64_t x = *(const uint64_t*)a, y = *(const uint64_t*)b;
  return x < y ? -1 : x > y;
}

static double pct(uint64_t* v, size_t n, double p) {
  if (n == 0) return -1;
  size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
  return (double)v[i] / 1000.0;
}

static void print_dist(const char* name, uint64_t* v, size_t n) {
  qsort(v, n, sizeof *v, cmp_u64);
  double sum = 0;
  for (size_t i = 0; i < n; i++) sum += (double)v[i];
  printf(
      "\"%s\":{\"count\":%zu,\"mean\":%.1f,\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,"
      "\"p999\":%.1f,\"max\":%.1f}",
      name, n, n ? sum / (double)n / 1000.0 : -1, pct(v, n, 50), pct(v, n, 90), pct(v, n, 99),
      pct(v, n, 99.9), n ? (double)v[n - 1] / 1000.0 : -1);
}

int main(int argc, char** argv) {
  for (int i = 1; i < argc; i++) {
    const char* a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v) die_usage("every option takes a value");
    if (!strcmp(a, "--host"))
      opt.host = v;
    else if (!strcmp(a, "--port"))
      opt.port = atoi(v);
    else if (!strcmp(a, "--path"))
      opt.path = v;
    else if (!strcmp(a, "--rate"))
      opt.rate = atof(v);
    else if (!strcmp(a, "--duration"))
      opt.duration = atof(v);
    else if (!strcmp(a, "--connections"))
      opt.connections = atoi(v);
    else if (!strcmp(a, "--expect-bytes"))
      opt.expect_bytes = atoll(v);
    else if (!strcmp(a, "--expect-header"))
      opt.expect_header = v;
    else if (!strcmp(a, "--body-bytes"))
      opt.body_bytes = atol(v);
    else if (!strcmp(a, "--drain-ms"))
      opt.drain_ns = (uint64_t)atoll(v) * 1000000ull;
    else
      die_usage("unknown option");
    i++;
  }
  if (opt.port <= 0 || opt.rate <= 0 || opt.duration <= 0 || opt.connections <= 0)
    die_usage("--port, --rate and --duration are required and positive");
  if (opt.expect_header && !strchr(opt.expect_header, ':'))
    die_usage("--expect-header takes 'name: value'");
  if (opt.body_bytes < 0 || opt.body_bytes > 64L * 1024 * 1024)
    die_usage("--body-bytes takes 0 to 64 MiB");
  size_t cap = strlen(opt.path) + 256 + (size_t)opt.body_bytes;
  request_bytes = malloc(cap);
  if (!request_bytes) return 1;
  if (opt.body_bytes > 0) {
    request_len = (size_t)snprintf(request_bytes, cap,
                                   "POST %s HTTP/1.1\r\nHost: bench\r\nUser-Agent: sy-openloop\r\n"
                                   "Content-Type: application/octet-stream\r\n"
                                   "Content-Length: %ld\r\n\r\n",
                                   opt.path, opt.body_bytes);
    memset(request_bytes + request_len, 'b', (size_t)opt.body_bytes);
    request_len += (size_t)opt.body_bytes;
  } else {
    request_len = (size_t)snprintf(
        request_bytes, cap, "GET %s HTTP/1.1\r\nHost: bench\r\nUser-Agent: sy-openloop\r\n\r\n",
        opt.path);
  }
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);

  st.cap = (size_t)(opt.rate * opt.duration * 1.1) + (size_t)opt.connections + 16;
  st.lat = calloc(st.cap, sizeof *st.lat);
  st.lag = calloc(st.cap, sizeof *st.lag);
  int epfd = epoll_create1(EPOLL_CLOEXEC);
  struct conn* conns = calloc((size_t)opt.connections, sizeof *conns);
  if (!st.lat || !st.lag || !conns || epfd < 0) return 1;

  uint64_t interval = (uint64_t)(1e9 * opt.connections / opt.rate);
  for (int i = 0; i < opt.connections; i++) {
    conns[i].fd = -1;
    conns[i].buf = malloc(BUF_SIZE);
    if (open_conn(&conns[i], epfd) != 0) st.conn_errors++;
  }
  /* Connections open first; the schedule starts after, staggered so that they do not fire
   * together. */
  uint64_t start = now_ns() + 20000000ull;
  uint64_t end = start + (uint64_t)(opt.duration * 1e9);
  for (int i = 0; i < opt.connections; i++)
    conns[i].next_due = start + interval * (uint64_t)i / (uint64_t)opt.connections;

  struct epoll_event events[256];
  uint64_t drain_deadline = 0;
  for (;;) {
    uint64_t now = now_ns();
    uint64_t next = UINT64_MAX;
    int in_flight = 0;
    for (int i = 0; i < opt.connections; i++) {
      struct conn* c = &conns[i];
      if (!c->busy && c->next_due < end) {
        if (c->next_due <= now) send_request(c, epfd, now);
        if (!c->busy && c->next_due < end && c->next_due < next) next = c->next_due;
      }
      in_flight += c->busy;
    }
    if (now >= end) {
      if (!in_flight) break;
      if (!drain_deadline) drain_deadline = end + opt.drain_ns;
      if (now >= drain_deadline) break;
      next = drain_deadline;
    } else if (next == UINT64_MAX || next > end) {
      next = end;
    }
    struct timespec to = {0, 0};
    if (next > now) {
      uint64_t d = next - now;
      to.tv_sec = (time_t)(d / 1000000000ull);
      to.tv_nsec = (long)(d % 1000000000ull);
    }
    int n = epoll_pwait2(epfd, events, 256, &to, NULL);
    if (n < 0 && errno != EINTR) return 1;
    for (int k = 0; k < n; k++) {
      struct conn* c = events[k].data.ptr;
      for (;;) {
        if (c->len == BUF_SIZE) { /* headers larger than the buffer: malformed for us */
          st.conn_errors++;
          drop_conn(c, epfd);
          break;
        }
        ssize_t r = recv(c->fd, c->buf + c->len, BUF_SIZE - c->len, 0);
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (r <= 0) {
          if (c->busy) st.closed++;
          drop_conn(c, epfd);
          break;
        }
        c->len += (size_t)r;
        if (!c->busy) { /* bytes nobody asked for */
          st.conn_errors++;
          drop_conn(c, epfd);
          break;
        }
        int p = parse(c);
        if (p < 0) {
          st.conn_errors++;
          drop_conn(c, epfd);
          break;
        }
        if (p == 1) {
          uint64_t t = now_ns();
          st.completed++;
          record(&st.lat, &st.nlat, t - c->due);
          if (c->status < 200 || c->status > 299)
            st.bad_status++;
          else if (opt.expect_bytes >= 0 && c->body_bytes != opt.expect_bytes)
            st.bad_body++;
          else if (!c->header_ok)
            st.bad_header++;
          c->busy = 0;
          if (c->close_after || c->len) { /* extra bytes after a response: not ours */
            if (c->len) st.conn_errors++;
            drop_conn(c, epfd);
            break;
          }
          /* The next request may already be due: send it without waiting for the loop. */
          uint64_t tn = now_ns();
          if (c->next_due <= tn && c->next_due < end) send_request(c, epfd, tn);
          if (!c->busy) break;
        }
      }
    }
  }
  for (int i = 0; i < opt.connections; i++)
    if (conns[i].busy) st.timeouts++;

  printf(
      "{\"tool\":\"sy-openloop\",\"intended_rate\":%.1f,\"duration_s\":%.3f,"
      "\"connections\":%d,\"sent\":%llu,\"completed\":%llu,\"achieved_rate\":%.1f,"
      "\"errors\":{\"status\":%llu,\"body\":%llu,\"header\":%llu,\"connection\":%llu,"
      "\"closed\":%llu,\"timeout\":%llu},",
      opt.rate, opt.duration, opt.connections, (unsigned long long)st.sent,
      (unsigned long long)st.completed, (double)st.completed / opt.duration,
      (unsigned long long)st.bad_status, (unsigned long long)st.bad_body,
      (unsigned long long)st.bad_header, (unsigned long long)st.conn_errors,
      (unsigned long long)st.closed, (unsigned long long)st.timeouts);
  print_dist("latency_us", st.lat, st.nlat);
  printf(",");
  print_dist("send_lag_us", st.lag, st.nlag);
  printf("}\n");
  return 0;
}
