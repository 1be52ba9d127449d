/* The common parts of a service's main() (service.h). */
#include "bligate/service.h"
#include "bligate/config.h"
#include "bligate/log.h"
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void bg_service_init(const char *service)
{
  const char *lvl = bg_cfg_str("BLIGATE_LOG_LEVEL", "info");
  enum bg_log_level level = BG_LOG_INFO;
  if (!strcmp(lvl, "debug"))
    level = BG_LOG_DEBUG;
  else if (!strcmp(lvl, "warn"))
    level = BG_LOG_WARN;
  else if (!strcmp(lvl, "error"))
    level = BG_LOG_ERROR;
  else if (strcmp(lvl, "info") != 0) {
    fprintf(stderr, "configuration error: BLIGATE_LOG_LEVEL must be debug, info, warn or error\n");
    exit(2);
  }
  bg_log_init(service, level);
  json_object_seed(0);
}

int bg_service_command(int argc, char **argv, const char *schema, const struct bg_migration *m, size_t n)
{
  if (argc < 2)
    return -1;
  if (argc == 2 && !strcmp(argv[1], "migrate"))
    return bg_db_migrate(bg_cfg_str("BLIGATE_DB_OWNER_URL", NULL), schema, m, n) ? 0 : 1;
  fprintf(stderr, "usage: %s [migrate]\n", argv[0]);
  return 2;
}

struct bg_server_cfg bg_service_server_cfg(const char *service, const struct bg_route *routes, size_t nroutes,
                                           size_t max_body)
{
  if (!getenv("BLIGATE_LISTEN_PORT")) {
    fprintf(stderr, "configuration error: BLIGATE_LISTEN_PORT is required\n");
    exit(2);
  }
  return (struct bg_server_cfg){
    .service = service,
    .addr = bg_cfg_str("BLIGATE_LISTEN_ADDR", "127.0.0.1"),
    .port = (unsigned)bg_cfg_long("BLIGATE_LISTEN_PORT", 0, 1, 65535),
    .routes = routes,
    .nroutes = nroutes,
    .max_body = (size_t)bg_cfg_long("BLIGATE_MAX_BODY", (long)max_body, 1024, 64 << 20),
    .max_conns = (unsigned)bg_cfg_long("BLIGATE_MAX_CONNECTIONS", 512, 4, 65536),
    .issuer = bg_cfg_str("BLIGATE_JWT_ISSUER", "bligate"),
    .audience = bg_cfg_str("BLIGATE_JWT_AUDIENCE", "bligate"),
    .test_clock = bg_cfg_bool("BLIGATE_TEST_CLOCK", false),
  };
}
