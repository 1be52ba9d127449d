/* Integration clients: registered city systems with unit-bound scopes (h_integration_clients.c). */
#ifndef ACCT_IC_H
#define ACCT_IC_H
#include "bligate/http.h"
#include <stdbool.h>

/* Its own small pool and statements, so the registry stays apart from the login path. */
bool acct_ic_init(const char *db_url);
void acct_ic_free(void);

void acct_h_ic_post(struct bg_request *r);
void acct_h_ic_list(struct bg_request *r);
void acct_h_ic_get(struct bg_request *r);
void acct_h_ic_secret(struct bg_request *r);
void acct_h_ic_disable(struct bg_request *r);

#endif
