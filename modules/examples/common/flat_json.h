/* A small reader for the flat JSON objects the C example modules take as config. */
#ifndef SY_EXAMPLES_FLAT_JSON_H
#define SY_EXAMPLES_FLAT_JSON_H

/* The host hands a filter its config as JSON text. The C examples only need objects of scalars
 * ({"name": "x-hello", "delay_ms": 300}), so instead of depending on a JSON library they read
 * them with this: strict JSON (RFC 8259) for that subset, nested objects and arrays refused
 * with a message. Header-only so that each example stays one self-contained folder plus this. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum fj_kind { FJ_STRING, FJ_NUMBER, FJ_BOOL, FJ_NULL } fj_kind_t;

/* Called once per member. KEY and VALUE are NUL-terminated (a string's unescaped bytes, which
 * may contain NUL: use VALUE_LEN; a number, true, false or null as written) and valid during the
 * call. Return false to reject the config after writing why into ERR. */
typedef bool (*fj_member_fn)(void* ctx, const char* key, fj_kind_t kind, const char* value,
                             size_t value_len, char* err, size_t err_size);

typedef struct fj_reader {
  const char* s;
  size_t n;
  size_t i;
} fj_reader_t;

static inline int fj_peek(const fj_reader_t* r) {
  return r->i < r->n ? (unsigned char)r->s[r->i] : -1;
}

static inline void fj_ws(fj_reader_t* r) {
  while (r->i < r->n &&
         (r->s[r->i] == ' ' || r->s[r->i] == '\t' || r->s[r->i] == '\n' || r->s[r->i] == '\r'))
    r->i++;
}

static inline bool fj_eat(fj_reader_t* r, char c) {
  if (fj_peek(r) != (unsigned char)c) return false;
  r->i++;
  return true;
}

static inline bool fj_hex4(fj_reader_t* r, uint32_t* out) {
  if (r->n - r->i < 4) return false;
  uint32_t v = 0;
  for (int k = 0; k < 4; k++) {
    char c = r->s[r->i++];
    v <<= 4;
    if (c >= '0' && c <= '9') {
      v |= (uint32_t)(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      v |= (uint32_t)(c - 'a' + 10);
    } else if (c >= 'A' && c <= 'F') {
      v |= (uint32_t)(c - 'A' + 10);
    } else {
      return false;
    }
  }
  *out = v;
  return true;
}

static inline size_t fj_utf8(uint32_t cp, char* out) {
  if (cp < 0x80) {
    out[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (char)(0xE0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = (char)(0xF0 | (cp >> 18));
  out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  out[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

/* A quoted string at the cursor, unescaped into OUT (which has room: unescaping never grows). */
static inline bool fj_string(fj_reader_t* r, char* out, size_t* out_len) {
  size_t o = 0;
  if (!fj_eat(r, '"')) return false;
  while (r->i < r->n) {
    unsigned char c = (unsigned char)r->s[r->i++];
    if (c == '"') {
      out[o] = '\0';
      *out_len = o;
      return true;
    }
    if (c < 0x20) return false; /* raw control bytes are not allowed in JSON strings */
    if (c != '\\') {
      out[o++] = (char)c;
      continue;
    }
    if (r->i >= r->n) return false;
    char e = r->s[r->i++];
    /* The one-letter escapes and what they stand for. */
    static const char kFrom[] = "\"\\/bfnrt", kTo[] = "\"\\/\b\f\n\r\t";
    const char* k = e != '\0' ? strchr(kFrom, e) : NULL;
    if (k != NULL) {
      out[o++] = kTo[k - kFrom];
      continue;
    }
    if (e != 'u') return false;
    uint32_t cp = 0, lo = 0;
    if (!fj_hex4(r, &cp)) return false;
    if (cp >= 0xD800 && cp < 0xDC00) { /* a high surrogate must pair with a low one */
      if (!fj_eat(r, '\\') || !fj_eat(r, 'u') || !fj_hex4(r, &lo) || lo < 0xDC00 || lo > 0xDFFF)
        return false;
      cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
      return false;
    }
    o += fj_utf8(cp, out + o);
  }
  return false;
}

static inline bool fj_digits(fj_reader_t* r) {
  size_t start = r->i;
  while (r->i < r->n && r->s[r->i] >= '0' && r->s[r->i] <= '9') r->i++;
  return r->i > start;
}

static inline bool fj_number(fj_reader_t* r, char* out, size_t* out_len) {
  size_t start = r->i;
  fj_eat(r, '-');
  if (!fj_eat(r, '0') && !fj_digits(r)) return false;
  if (fj_eat(r, '.') && !fj_digits(r)) return false;
  if (fj_eat(r, 'e') || fj_eat(r, 'E')) {
    if (!fj_eat(r, '+')) fj_eat(r, '-');
    if (!fj_digits(r)) return false;
  }
  *out_len = r->i - start;
  memcpy(out, r->s + start, *out_len);
  out[*out_len] = '\0';
  return true;
}

static inline bool fj_literal(fj_reader_t* r, const char* word, char* out, size_t* out_len) {
  size_t len = strlen(word);
  if (r->n - r->i < len || memcmp(r->s + r->i, word, len) != 0) return false;
  r->i += len;
  memcpy(out, word, len + 1);
  *out_len = len;
  return true;
}

/* Parses JSON (LEN bytes) as an object of scalars and calls FN for each member in order. On
 * failure returns false with ERR saying why. A key that appears twice is refused. */
static inline bool fj_parse(const char* json, size_t len, fj_member_fn fn, void* ctx, char* err,
                            size_t err_size) {
  fj_reader_t r = {json, len, 0};
  bool ok = false;
  /* Unescaped text is never longer than its JSON: one buffer for all keys (kept, to spot a
   * repeated key) and one for the current value. */
  char* keys = (char*)malloc(len + 1);
  char* value = (char*)malloc(len + 1);
  size_t keys_used = 0;
  if (keys == NULL || value == NULL) {
    snprintf(err, err_size, "out of memory reading the config");
    goto done;
  }
  fj_ws(&r);
  if (!fj_eat(&r, '{')) {
    if (r.i == len) {
      snprintf(err, err_size, "config must be a JSON object, got nothing");
    } else {
      snprintf(err, err_size, "config must be a JSON object, got %.*s%s",
               (int)(len - r.i > 40 ? 40 : len - r.i), json + r.i, len - r.i > 40 ? "..." : "");
    }
    goto done;
  }
  fj_ws(&r);
  if (fj_eat(&r, '}')) goto end;
  for (;;) {
    char* key = keys + keys_used;
    size_t key_len = 0, value_len = 0;
    fj_kind_t kind;
    fj_ws(&r);
    if (!fj_string(&r, key, &key_len)) {
      snprintf(err, err_size, "config: expected a quoted key at byte %zu", r.i);
      goto done;
    }
    for (const char* k = keys; k < key; k += strlen(k) + 1) {
      if (strcmp(k, key) == 0) {
        snprintf(err, err_size, "config: '%s' appears twice", key);
        goto done;
      }
    }
    keys_used += key_len + 1;
    fj_ws(&r);
    if (!fj_eat(&r, ':')) {
      snprintf(err, err_size, "config: expected ':' after '%s'", key);
      goto done;
    }
    fj_ws(&r);
    int c = fj_peek(&r);
    if (c == '{' || c == '[') {
      snprintf(err, err_size, "config: '%s' must be a string, number or boolean, not an %s", key,
               c == '{' ? "object" : "array");
      goto done;
    }
    bool got;
    if (c == '"') {
      kind = FJ_STRING;
      got = fj_string(&r, value, &value_len);
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      kind = FJ_NUMBER;
      got = fj_number(&r, value, &value_len);
    } else if (c == 'n') {
      kind = FJ_NULL;
      got = fj_literal(&r, "null", value, &value_len);
    } else {
      kind = FJ_BOOL;
      got = fj_literal(&r, "true", value, &value_len) || fj_literal(&r, "false", value, &value_len);
    }
    if (!got) {
      snprintf(err, err_size, "config: bad JSON value for '%s'", key);
      goto done;
    }
    if (!fn(ctx, key, kind, value, value_len, err, err_size)) goto done;
    fj_ws(&r);
    if (fj_eat(&r, '}')) break;
    if (!fj_eat(&r, ',')) {
      snprintf(err, err_size, "config: expected ',' or '}' after '%s'", key);
      goto done;
    }
  }
end:
  fj_ws(&r);
  if (r.i != r.n) {
    snprintf(err, err_size, "config: unexpected text after the object");
    goto done;
  }
  ok = true;
done:
  free(keys);
  free(value);
  return ok;
}

/* Reads a non-negative decimal integer no larger than MAX from a number member's text. */
static inline bool fj_uint(const char* text, uint64_t max, uint64_t* out) {
  uint64_t v = 0;
  if (*text == '\0') return false;
  for (const char* p = text; *p != '\0'; p++) {
    if (*p < '0' || *p > '9') return false;
    uint64_t d = (uint64_t)(*p - '0');
    if (d > max || v > (max - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = v;
  return true;
}

#endif /* SY_EXAMPLES_FLAT_JSON_H */
