/* What a service other than accounts needs from accounts: the token verification keys
 * (JWKS) and its own client-credentials token for calling other services' /internal API. */
#ifndef BLIGATE_SVC_H
#define BLIGATE_SVC_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include "bligate/jwt.h"

struct bg_svc;

/* From BLIGATE_ACCOUNTS_URL, BLIGATE_JWKS_URL (default accounts' /.well-known/jwks.json),
 * BLIGATE_CLIENT_ID and BLIGATE_CLIENT_SECRET_FILE; exits naming a missing variable. */
struct bg_svc *bg_svc_from_env(void);
void bg_svc_free(struct bg_svc *s);

/* Fetches the JWKS, retrying for up to wait_ms while accounts is not up yet. The keyset is
 * owned by the svc and lives until bg_svc_free. NULL when it could not be had. */
const struct bg_keyset *bg_svc_keys(struct bg_svc *s, int wait_ms);

/* A valid access token for this service's client (cached; renewed when under 60 s remain).
 * Copies it into buf; false when accounts cannot issue one. Thread-safe. */
bool bg_svc_token(struct bg_svc *s, char *buf, size_t len);

/* Calls another service's internal API with this service's token: method, full URL, an
 * optional JSON body (not stolen), the request id to propagate. Returns the HTTP status (0 when
 * the call failed) and the parsed JSON reply in *out (NULL if none). */
long bg_svc_call(struct bg_svc *s, const char *method, const char *url, const json_t *body, const char *request_id,
                 json_t **out);
/* The same with a body already serialised as JSON text (NULL: none), for a caller that has it. */
long bg_svc_call_text(struct bg_svc *s, const char *method, const char *url, const char *text,
                      const char *request_id, json_t **out);

/* The keyed hash under which subjects' national IDs are stored and searched (never the ID
 * itself): HMAC-SHA256 with the key from BLIGATE_ID_HMAC_KEY_FILE (hex), as 64 hex chars. */
bool bg_id_hmac_init_from_env(void);
bool bg_id_hmac(const char *national_id, char out[65]);
/* HMAC-SHA256 of label and data with the same key, for digests of data that may hold a national
 * ID (a plain hash of it could be reversed by trying every ID). false when no key is loaded. */
bool bg_keyed_digest(const char *label, const void *data, size_t n, char out[65]);

#endif
