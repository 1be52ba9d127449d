/* What every service's main() does the same way: logging, `<binary> migrate`, and the server
 * settings read from the environment, so that each service's main keeps only what is its own. */
#ifndef BLIGATE_SERVICE_H
#define BLIGATE_SERVICE_H
#include "bligate/db.h"
#include "bligate/http.h"

/* Logs as `service` at BLIGATE_LOG_LEVEL (debug, info, warn, error; default info) and seeds
 * jansson's hash function before any thread starts. */
void bg_service_init(const char *service);

/* With no argument: returns -1 (serve). `migrate`: applies the embedded migrations of `schema`
 * with BLIGATE_DB_OWNER_URL and returns the exit status. Anything else: usage, returns 2. */
int bg_service_command(int argc, char **argv, const char *schema, const struct bg_migration *m, size_t n);

/* The server settings every service reads: BLIGATE_LISTEN_ADDR (127.0.0.1), BLIGATE_LISTEN_PORT
 * (required), BLIGATE_MAX_BODY (max_body by default), BLIGATE_MAX_CONNECTIONS (512),
 * BLIGATE_JWT_ISSUER and BLIGATE_JWT_AUDIENCE ("bligate"), BLIGATE_TEST_CLOCK (off). A missing or
 * bad value exits 2 naming it. */
struct bg_server_cfg bg_service_server_cfg(const char *service, const struct bg_route *routes, size_t nroutes,
                                           size_t max_body);

#endif
