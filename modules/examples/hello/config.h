/* hello's config: the header it adds to responses, read from JSON and validated. */
#ifndef HELLO_CONFIG_H
#define HELLO_CONFIG_H

#include <switchyard/module.h>

typedef struct hello_config {
  char* name; /* a valid header name (RFC 9110 token), NUL-terminated */
  size_t name_len;
  char* value; /* a valid field value */
  size_t value_len;
} hello_config_t;

/* {"name": "x-hello", "value": "world"}; both optional (those are the defaults). Returns NULL
 * with ERR set when the config is not such an object or holds an invalid name or value. */
hello_config_t* hello_config_parse(sy_str_t json, sy_error_t* err);
void hello_config_free(hello_config_t* config);

#endif /* HELLO_CONFIG_H */
