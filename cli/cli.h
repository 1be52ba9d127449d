/* The bligate command-line client: what its files share (the server call, the token file,
 * the signer, safe printing). Internal to cli/. */
#ifndef BLIGATE_CLI_H
#define BLIGATE_CLI_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Exit codes: 0 done, 1 the operation failed (server refusal, network, files), 2 usage. */
enum cli_exit { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

#define CLI_URL_MAX 1024
#define CLI_PATH_MAX 4096
#define CLI_DEFAULT_URL "http://127.0.0.1:8080"

/* ---- main.c: options every command shares ---- */
struct cli_opts {
  const char *url;  /* --url, or NULL */
  const char *cert; /* login */
  const char *key;  /* login */
  bool cms;         /* login */
};

int cli_cmd_login(const struct cli_opts *o);
int cli_cmd_whoami(const struct cli_opts *o);
int cli_cmd_logout(const struct cli_opts *o);
int cli_cmd_refresh(const struct cli_opts *o);
/* audit_verify.c: `bligate audit verify|verify-consistency ...` (argv[0] is "audit") */
int cli_audit_main(int argc, char **argv);

/* ---- api.c: calls to the gateway ---- */
struct cli_reply {
  long status;   /* 0: no HTTP answer (see error) */
  json_t *json;  /* parsed body when it is JSON, else NULL */
  char error[160];
};

/* Normalises a base URL (http/https only, no trailing '/'); false with a message on stderr. */
bool cli_url_normalise(const char *in, char out[CLI_URL_MAX]);
/* The base URL for login: --url, $BLIGATE_URL, or the default. */
bool cli_url_default(const char *opt, char out[CLI_URL_MAX]);
/* method base+path with an optional bearer token and JSON body (not stolen). Returns false
 * only when there was no HTTP answer; the reply is filled either way. */
bool cli_call(const char *method, const char *base, const char *path, const char *bearer, const json_t *body,
              struct cli_reply *out);
void cli_reply_free(struct cli_reply *r);
/* The problem code of a reply ("" when it is not a problem). */
const char *cli_problem_code(const struct cli_reply *r);
/* "bligate: <what>: <code>: <detail> (request <id>)" on stderr, or the transport error. */
void cli_report_failure(const char *what, const struct cli_reply *r);
/* A string member, or NULL when absent or not a string. */
const char *cli_str(const json_t *obj, const char *key);
/* Copies src into dst; false when src is NULL or does not fit. */
bool cli_copy(char *dst, size_t cap, const char *src);

/* ---- token_store.c: the token file ---- */
struct cli_token {
  char url[CLI_URL_MAX];
  char session_id[64];
  char *access_token; /* malloc'd; wiped and freed by cli_token_clear */
};

/* $BLIGATE_TOKEN_FILE, $XDG_CONFIG_HOME/bligate/token or ~/.config/bligate/token. */
bool cli_token_path(char out[CLI_PATH_MAX]);
/* Writes the token file atomically with mode 0600 (creating the default directory 0700). */
bool cli_token_save(const char *path, const struct cli_token *t);
enum cli_token_load {
  CLI_TOKEN_LOADED,
  CLI_TOKEN_ABSENT,
  CLI_TOKEN_INSECURE, /* readable or writable by group/others, or not ours: still loaded */
  CLI_TOKEN_BAD,      /* unreadable or malformed; message printed */
};
enum cli_token_load cli_token_load(const char *path, struct cli_token *t);
bool cli_token_remove(const char *path);
void cli_token_clear(struct cli_token *t);

/* ---- login.c ---- */
/* Stores a login or refresh reply {access_token, session_id, expires_in} for url. */
bool cli_session_store(const char *token_path, const char *url, const json_t *reply, long long *expires_in);

/* ---- signer.c: signing the login challenge like the MOICA signing component ---- */
struct cli_signer;
/* Loads the certificate (PEM or DER) and the unencrypted-or-prompted private key (PEM or
 * DER); checks that they belong together. Warns when the key file is readable by others. */
struct cli_signer *cli_signer_new(const char *cert_file, const char *key_file);
void cli_signer_free(struct cli_signer *s);
/* The certificate as PEM text; malloc'd. */
char *cli_signer_cert_pem(const struct cli_signer *s);
/* SHA-256 signature over data: ECDSA (DER Ecdsa-Sig-Value) or RSA PKCS#1 v1.5; base64. */
char *cli_signer_sign_raw(const struct cli_signer *s, const void *data, size_t n);
/* Detached CMS SignedData (binary content, SHA-256, signer certificate included); DER, base64. */
char *cli_signer_sign_cms(const struct cli_signer *s, const void *data, size_t n);

/* ---- api.c: printing ---- */
/* Writes s to f with control characters replaced by '?', so a server cannot drive the
 * terminal. NULL prints "-". */
void cli_put_safe(FILE *f, const char *s);

#endif
