/* Configuration from BLIGATE_* environment variables. A missing required or malformed value
 * exits with status 2 naming the variable: a service never starts half-configured. */
#ifndef BLIGATE_CONFIG_H
#define BLIGATE_CONFIG_H
#include <stdbool.h>
#include <stddef.h>

const char *bg_cfg_str(const char *name, const char *def);   /* def NULL: required */
long bg_cfg_long(const char *name, long def, long min, long max);
bool bg_cfg_bool(const char *name, bool def);
/* Reads a whole file named by the variable; exits if unreadable. Caller frees. */
char *bg_cfg_file(const char *name, size_t *len);
/* For tests: collect errors instead of exiting. */
void bg_cfg_fail_hook(void (*fn)(const char *name, const char *why));

#endif
