/* bligate audit verify / verify-consistency: an auditor's offline checks of the audit log,
 * trusting nothing the server says but its published public key. verify recomputes the Merkle
 * tree (RFC 9162) from an NDJSON export, each leaf from the event's canonical form
 * (docs/audit-log.md), and compares the root with a signed tree head; verify-consistency
 * checks that a newer signed tree head extends an older one. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "canon.h"
#include "cli.h"
#include "merkle.h"
#include "sthsig.h"

static json_t *load_json(const char *path, const char *what)
{
  json_error_t err;
  json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
  if (!j)
    fprintf(stderr, "bligate audit: cannot read the %s %s: %s (line %d)\n", what, path, err.text, err.line);
  return j;
}

/* The key named by the JWS's kid in a JWKS file; NULL (with a message) otherwise. */
static EVP_PKEY *key_for(const json_t *jwks, const char *jws)
{
  char kid[128];
  if (!aud_jws_kid(jws, kid, sizeof kid)) {
    fprintf(stderr, "bligate audit: the tree head's signature names no key\n");
    return NULL;
  }
  size_t i;
  json_t *k;
  json_array_foreach(json_object_get(jwks, "keys"), i, k)
  {
    const char *id = json_string_value(json_object_get(k, "kid"));
    const char *alg = json_string_value(json_object_get(k, "alg"));
    if (id && !strcmp(id, kid) && (!alg || !strcmp(alg, "ES256")))
      return aud_jwk_public(k);
  }
  fprintf(stderr, "bligate audit: key %s is not in the key file\n", kid);
  return NULL;
}

/* A tree head file ({tree_size, root_hash, timestamp, key_id, signature}) whose signature
 * verifies and whose stated values are the signed ones: the timestamp the payload's, the key_id
 * the header's kid (a file may leave any of them out, never state another). */
static bool load_tree_head(const char *path, const json_t *jwks, struct aud_sth *out)
{
  json_t *j = load_json(path, "tree head");
  if (!j)
    return false;
  bool ok = false;
  const char *sig = json_string_value(json_object_get(j, "signature"));
  EVP_PKEY *pub = sig ? key_for(jwks, sig) : NULL;
  if (!sig)
    fprintf(stderr, "bligate audit: %s has no signature\n", path);
  else if (pub && !aud_sth_check(sig, pub, out))
    fprintf(stderr, "bligate audit: the signature of the tree head %s does not verify\n", path);
  else if (pub) {
    const json_t *size = json_object_get(j, "tree_size");
    const json_t *rootj = json_object_get(j, "root_hash"), *tsj = json_object_get(j, "timestamp"),
                 *kidj = json_object_get(j, "key_id");
    const char *root = json_string_value(rootj), *ts = json_string_value(tsj), *kid = json_string_value(kidj);
    unsigned char r[AUD_HASH_LEN];
    if ((size && (!json_is_integer(size) || (uint64_t)json_integer_value(size) != out->tree_size)) ||
        (rootj && (!aud_hash_unhex(root, r) || memcmp(r, out->root, AUD_HASH_LEN))))
      fprintf(stderr, "bligate audit: %s states other values than it signs\n", path);
    else if (tsj && (!ts || strcmp(ts, out->timestamp)))
      fprintf(stderr, "bligate audit: %s states the timestamp %s, but it was signed %s\n", path,
              ts ? ts : "(not a string)", out->timestamp);
    else if (kidj && (!kid || !out->kid[0] || strcmp(kid, out->kid)))
      fprintf(stderr, "bligate audit: %s states the key %s, but it was signed by %s\n", path,
              kid ? kid : "(not a string)", out->kid[0] ? out->kid : "(no key named)");
    else
      ok = true;
  }
  EVP_PKEY_free(pub);
  json_decref(j);
  return ok;
}

static int verify_export(const char *export_path, const char *sth_path, const char *keys_path)
{
  json_t *jwks = load_json(keys_path, "key file");
  struct aud_sth sth;
  if (!jwks || !load_tree_head(sth_path, jwks, &sth)) {
    json_decref(jwks);
    return CLI_FAIL;
  }
  json_decref(jwks);
  FILE *f = fopen(export_path, "r");
  if (!f) {
    fprintf(stderr, "bligate audit: cannot open %s\n", export_path);
    return CLI_FAIL;
  }
  struct aud_frontier fr;
  aud_frontier_init(&fr);
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  int rc = CLI_FAIL;
  unsigned long long lineno = 0;
  while ((n = getline(&line, &cap, f)) != -1) {
    lineno++;
    if (n == 1 && line[0] == '\n')
      continue;
    json_error_t err;
    json_t *j = json_loadb(line, (size_t)n, JSON_REJECT_DUPLICATES, &err);
    const json_t *idx = json_object_get(j, "index"), *ev = json_object_get(j, "event");
    const char *lh = json_string_value(json_object_get(j, "leaf_hash"));
    unsigned char stated[AUD_HASH_LEN], leaf[AUD_HASH_LEN];
    if (!j || !json_is_integer(idx) || !json_is_object(ev) || !aud_hash_unhex(lh, stated)) {
      fprintf(stderr, "bligate audit: line %llu is not {index, leaf_hash, event}\n", lineno);
      json_decref(j);
      goto out;
    }
    if ((uint64_t)json_integer_value(idx) != fr.size) {
      fprintf(stderr, "bligate audit: line %llu has index %lld where %llu was due: an event is missing, "
                      "added or out of order\n",
              lineno, (long long)json_integer_value(idx), (unsigned long long)fr.size);
      json_decref(j);
      goto out;
    }
    const char *why = NULL;
    size_t clen;
    char *canon = aud_canon(ev, &clen, &why);
    if (!canon) {
      fprintf(stderr, "bligate audit: event %llu has no canonical form (%s)\n", (unsigned long long)fr.size,
              why ? why : "?");
      json_decref(j);
      goto out;
    }
    aud_leaf_hash(canon, clen, leaf);
    free(canon);
    json_decref(j);
    if (memcmp(leaf, stated, AUD_HASH_LEN)) {
      fprintf(stderr, "bligate audit: event %llu does not hash to its stated leaf hash: it was changed\n",
              (unsigned long long)fr.size);
      goto out;
    }
    aud_frontier_append(&fr, leaf, NULL, NULL);
  }
  unsigned char root[AUD_HASH_LEN];
  aud_frontier_root(&fr, root);
  char hex[2 * AUD_HASH_LEN + 1];
  aud_hash_hex(root, hex);
  if (fr.size != sth.tree_size) {
    fprintf(stderr, "bligate audit: the export holds %llu events, the signed tree head %llu\n",
            (unsigned long long)fr.size, (unsigned long long)sth.tree_size);
  } else if (memcmp(root, sth.root, AUD_HASH_LEN)) {
    fprintf(stderr, "bligate audit: the export's root %s differs from the signed root: an event was changed, "
                    "removed, reordered or inserted\n", hex);
  } else {
    printf("verified: %llu events, root %s, signed %s by key %s\n", (unsigned long long)fr.size, hex,
           sth.timestamp, sth.kid);
    rc = CLI_OK;
  }
out:
  free(line);
  fclose(f);
  return rc;
}

static int verify_consistency(const char *old_path, const char *new_path, const char *proof_path,
                              const char *keys_path)
{
  json_t *jwks = load_json(keys_path, "key file"), *proof = NULL;
  struct aud_sth a, b;
  int rc = CLI_FAIL;
  if (!jwks || !load_tree_head(old_path, jwks, &a) || !load_tree_head(new_path, jwks, &b) ||
      !(proof = load_json(proof_path, "consistency proof")))
    goto out;
  const json_t *path = json_object_get(proof, "consistency_path");
  size_t n = json_array_size(path);
  if (!json_is_array(path) || n > AUD_MAX_PROOF) {
    fprintf(stderr, "bligate audit: %s has no consistency_path\n", proof_path);
    goto out;
  }
  unsigned char h[AUD_MAX_PROOF][AUD_HASH_LEN];
  for (size_t i = 0; i < n; i++)
    if (!aud_hash_unhex(json_string_value(json_array_get(path, i)), h[i])) {
      fprintf(stderr, "bligate audit: element %zu of the proof is not a hash\n", i);
      goto out;
    }
  if (!aud_verify_consistency(a.tree_size, b.tree_size, a.root, b.root, (const unsigned char(*)[AUD_HASH_LEN])h,
                              (int)n)) {
    fprintf(stderr, "bligate audit: the tree head of %llu events does not extend the one of %llu events\n",
            (unsigned long long)b.tree_size, (unsigned long long)a.tree_size);
    goto out;
  }
  printf("consistent: the log of %llu events extends the log of %llu events\n", (unsigned long long)b.tree_size,
         (unsigned long long)a.tree_size);
  rc = CLI_OK;
out:
  json_decref(jwks);
  json_decref(proof);
  return rc;
}

static int audit_usage(FILE *f, int rc)
{
  fputs("usage: bligate audit verify --export FILE --tree-head FILE --keys FILE\n"
        "       bligate audit verify-consistency --old FILE --new FILE --proof FILE --keys FILE\n"
        "\n"
        "Offline checks of the audit log; nothing is asked of the server.\n"
        "  verify               recompute the Merkle tree from an NDJSON export\n"
        "                       (GET /v1/audit/events, Accept: application/x-ndjson) and compare it\n"
        "                       with a signed tree head (GET /v1/audit/tree-heads/latest)\n"
        "  verify-consistency   check that the newer signed tree head extends the older one with a\n"
        "                       proof from GET /v1/audit/proofs/consistency\n"
        "  --keys FILE          the audit service's key set (GET /v1/audit/keys); --key is the same\n"
        "\n"
        "exit status: 0 verified, 1 not verified (the reason is printed), 2 usage error\n",
        f);
  return rc;
}

int cli_audit_main(int argc, char **argv)
{
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
    return audit_usage(argc < 2 ? stderr : stdout, argc < 2 ? CLI_USAGE : CLI_OK);
  const char *sub = argv[1];
  bool full = !strcmp(sub, "verify"), cons = !strcmp(sub, "verify-consistency");
  if (!full && !cons) {
    fprintf(stderr, "bligate audit: unknown command %s\n", sub);
    return audit_usage(stderr, CLI_USAGE);
  }
  static const struct option opts[] = {
    {.name = "export", .has_arg = required_argument, .val = 'e'},
    {.name = "tree-head", .has_arg = required_argument, .val = 't'},
    {.name = "keys", .has_arg = required_argument, .val = 'k'},
    {.name = "key", .has_arg = required_argument, .val = 'k'},
    {.name = "old", .has_arg = required_argument, .val = 'o'},
    {.name = "new", .has_arg = required_argument, .val = 'n'},
    {.name = "proof", .has_arg = required_argument, .val = 'p'},
    {.name = "help", .has_arg = no_argument, .val = 'h'},
    {.name = NULL},
  };
  const char *exp = NULL, *sth = NULL, *keys = NULL, *old = NULL, *nw = NULL, *proof = NULL;
  opterr = 0;
  optind = 1;
  int ch;
  while ((ch = getopt_long(argc - 1, argv + 1, "+:h", opts, NULL)) != -1) {
    switch (ch) {
    case 'e': exp = optarg; break;
    case 't': sth = optarg; break;
    case 'k': keys = optarg; break;
    case 'o': old = optarg; break;
    case 'n': nw = optarg; break;
    case 'p': proof = optarg; break;
    case 'h': return audit_usage(stdout, CLI_OK);
    default:
      fprintf(stderr, "bligate audit %s: unknown option or missing value\n", sub);
      return audit_usage(stderr, CLI_USAGE);
    }
  }
  json_object_seed(0);
  if (full) {
    if (!exp || !sth || !keys || old || nw || proof || optind < argc - 1)
      return audit_usage(stderr, CLI_USAGE);
    return verify_export(exp, sth, keys);
  }
  if (!old || !nw || !proof || !keys || exp || sth || optind < argc - 1)
    return audit_usage(stderr, CLI_USAGE);
  return verify_consistency(old, nw, proof, keys);
}
