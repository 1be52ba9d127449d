/* Citizen-certificate checks (pki.h). */
#include "pki.h"
#include "bligate/log.h"
#include "bligate/util.h"
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct acct_pki {
  char *crl_file;
  STACK_OF(X509) *cas;
  pthread_mutex_t mu;
  X509_STORE *store;          /* current store with CRLs; replaced, never mutated */
  time_t min_next_update;     /* earliest nextUpdate of the loaded CRLs */
  time_t max_last_update;     /* latest thisUpdate of the loaded CRLs */
  unsigned long generation;   /* bumped whenever the store is rebuilt (or dropped) */
  struct stat loaded;         /* identity of the CRL file the store was built from */
};

/* ---- caches: what a login repeats for a certificate it has seen before ----
 *
 * Parsing a certificate costs more than verifying a signature with it (OpenSSL 3 decodes the
 * public key through its provider machinery), and a chain check with CRLs costs four ECDSA
 * verifications. Both results are cached, small and direct-mapped:
 * - parsed certificates with their holder details, by SHA-256 of the submitted text;
 * - successful chain checks, by SHA-256 of the certificate and the store generation, valid
 *   while the clock is inside every chain certificate's and CRL's validity. A new or removed
 *   CRL file is a new generation, so a revocation takes effect at the next login. Failures
 *   are never cached. */
/* 4-way set associative with least-recently-used replacement: direct mapping lost about one
 * entry in seven to collisions with only 64 certificates in 512 slots (birthday paradox). */
#define CACHE_WAYS 4
#define PARSE_SETS 128   /* 512 certificates, about 0.6 MB with their details */
#define VERIFY_SETS 1024 /* 4096 chain results */
struct parse_entry {
  unsigned char key[32];
  uint64_t used;
  X509 *cert;
  struct acct_cert_info info;
};
struct verify_entry {
  unsigned char key[32];
  uint64_t used;
  unsigned long generation;
  time_t from, until;
};
static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static struct parse_entry *parse_cache;
static struct verify_entry *verify_cache;
static uint64_t cache_clock; /* under cache_mu: recency of use */
static EVP_MD *sha256_md;    /* fetched once: EVP_sha256() looks it up on every digest */

static void caches_init(void)
{
  parse_cache = calloc(PARSE_SETS * CACHE_WAYS, sizeof *parse_cache);
  verify_cache = calloc(VERIFY_SETS * CACHE_WAYS, sizeof *verify_cache);
  sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}
static pthread_once_t caches_once = PTHREAD_ONCE_INIT;

static bool sha256(const void *data, size_t n, unsigned char out[32])
{
  pthread_once(&caches_once, caches_init);
  return sha256_md && EVP_Digest(data, n, out, NULL, sha256_md, NULL) == 1;
}

/* The first way of key's set. */
static size_t set_of(const unsigned char key[32], size_t sets)
{
  return ((size_t)key[0] << 16 | (size_t)key[1] << 8 | key[2]) % sets * CACHE_WAYS;
}

/* ---- CRLs verified once ----
 *
 * OpenSSL checks a CRL's signature on every chain verification that uses it: with a 5-20 MB
 * MOICA CRL that is hashing megabytes per login. When every CRL in the file is a plain full
 * CRL (no issuing distribution point, not a delta) whose signature verifies with a CA of the
 * trust store allowed to sign CRLs, the store is built with its own check_crl: the CRL must be
 * one verified at build time, by the very CA certificate that issues the certificate being
 * checked, and current at the verification time. Anything else keeps OpenSSL's own check. */
struct crl_verified {
  X509_CRL *crl; /* referenced */
  X509 *ca;      /* the CA whose key verified it (held by p->cas) */
};
struct crl_set {
  int n;
  struct crl_verified v[];
};
static int crl_set_index = -1;

static void crl_set_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
  struct crl_set *set = ptr;
  if (!set)
    return;
  for (int i = 0; i < set->n; i++)
    X509_CRL_free(set->v[i].crl);
  free(set);
}

static void crl_index_init(void)
{
  crl_set_index = X509_STORE_get_ex_new_index(0, NULL, NULL, NULL, crl_set_free);
}
static pthread_once_t crl_index_once = PTHREAD_ONCE_INIT;

static int crl_fail(X509_STORE_CTX *ctx, int err)
{
  X509_STORE_CTX_set_error(ctx, err);
  X509_STORE_CTX_verify_cb cb = X509_STORE_CTX_get_verify_cb(ctx);
  return cb ? cb(0, ctx) : 0;
}

static int check_crl_verified(X509_STORE_CTX *ctx, X509_CRL *crl)
{
  struct crl_set *set = X509_STORE_get_ex_data(X509_STORE_CTX_get0_store(ctx), crl_set_index);
  const struct crl_verified *v = NULL;
  for (int i = 0; set && i < set->n && !v; i++)
    if (set->v[i].crl == crl)
      v = &set->v[i];
  if (!v)
    return crl_fail(ctx, X509_V_ERR_CRL_SIGNATURE_FAILURE);
  /* the CRL's issuer on this path: the next certificate up, or a self-issued anchor itself */
  X509 *issuer = X509_STORE_CTX_get0_current_issuer(ctx);
  if (!issuer) {
    STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(ctx);
    int depth = X509_STORE_CTX_get_error_depth(ctx), last = sk_X509_num(chain) - 1;
    issuer = depth < last ? sk_X509_value(chain, depth + 1) : sk_X509_value(chain, last);
  }
  if (!issuer || X509_cmp(issuer, v->ca) != 0)
    return crl_fail(ctx, X509_V_ERR_CRL_SIGNATURE_FAILURE);
  /* X509_cmp_time: -1 earlier or equal, 1 later, 0 unreadable (refused) */
  time_t t = X509_VERIFY_PARAM_get_time(X509_STORE_CTX_get0_param(ctx));
  if (X509_cmp_time(X509_CRL_get0_lastUpdate(crl), &t) != -1)
    return crl_fail(ctx, X509_V_ERR_CRL_NOT_YET_VALID);
  const ASN1_TIME *next = X509_CRL_get0_nextUpdate(crl);
  if (!next || X509_cmp_time(next, &t) != 1)
    return crl_fail(ctx, X509_V_ERR_CRL_HAS_EXPIRED);
  return 1;
}

/* The CA of the trust store that signed this CRL, or NULL. */
static X509 *crl_signer(struct acct_pki *p, X509_CRL *crl)
{
  if (X509_CRL_get_ext_by_NID(crl, NID_issuing_distribution_point, -1) >= 0 ||
      X509_CRL_get_ext_by_NID(crl, NID_delta_crl, -1) >= 0)
    return NULL;
  for (int i = 0; i < sk_X509_num(p->cas); i++) {
    X509 *ca = sk_X509_value(p->cas, i);
    if (X509_NAME_cmp(X509_get_subject_name(ca), X509_CRL_get_issuer(crl)) != 0)
      continue;
    if ((X509_get_extension_flags(ca) & EXFLAG_KUSAGE) && !(X509_get_key_usage(ca) & KU_CRL_SIGN))
      continue;
    EVP_PKEY *k = X509_get0_pubkey(ca);
    if (k && X509_CRL_verify(crl, k) == 1)
      return ca;
  }
  ERR_clear_error();
  return NULL;
}

static X509 *read_pem_or_der(BIO *b)
{
  return PEM_read_bio_X509(b, NULL, NULL, NULL);
}

struct acct_pki *acct_pki_new(const char *ca_file, const char *crl_file)
{
  struct acct_pki *p = calloc(1, sizeof *p);
  BIO *b = BIO_new_file(ca_file, "r");
  if (!p || !b) {
    bg_error("cannot read trust store %s", ca_file);
    exit(2);
  }
  p->cas = sk_X509_new_null();
  X509 *x;
  while ((x = read_pem_or_der(b)))
    sk_X509_push(p->cas, x);
  ERR_clear_error();
  BIO_free(b);
  if (sk_X509_num(p->cas) == 0) {
    bg_error("trust store %s holds no certificates", ca_file);
    exit(2);
  }
  p->crl_file = strdup(crl_file);
  pthread_mutex_init(&p->mu, NULL);
  return p;
}

void acct_pki_free(struct acct_pki *p)
{
  if (!p)
    return;
  sk_X509_pop_free(p->cas, X509_free);
  X509_STORE_free(p->store);
  pthread_mutex_destroy(&p->mu);
  free(p->crl_file);
  free(p);
}

static time_t asn1_time(const ASN1_TIME *t)
{
  struct tm tm;
  if (!t || !ASN1_TIME_to_tm(t, &tm))
    return 0;
  return timegm(&tm);
}

/* Builds a fresh store from the CA list and the CRL file. NULL if the file holds no CRL. */
static X509_STORE *build_store(struct acct_pki *p, time_t *min_next, time_t *max_last)
{
  BIO *b = BIO_new_file(p->crl_file, "r");
  if (!b)
    return NULL;
  pthread_once(&crl_index_once, crl_index_init);
  X509_STORE *st = X509_STORE_new();
  for (int i = 0; i < sk_X509_num(p->cas); i++)
    X509_STORE_add_cert(st, sk_X509_value(p->cas, i));
  int ncrl = 0, cap = 0;
  bool all_verified = true;
  time_t earliest = 0, latest = 0;
  struct crl_set *set = NULL;
  X509_CRL *crl;
  while ((crl = PEM_read_bio_X509_CRL(b, NULL, NULL, NULL))) {
    time_t nu = asn1_time(X509_CRL_get0_nextUpdate(crl)), lu = asn1_time(X509_CRL_get0_lastUpdate(crl));
    if (!earliest || nu < earliest)
      earliest = nu;
    if (lu > latest)
      latest = lu;
    X509 *ca = all_verified ? crl_signer(p, crl) : NULL;
    if (ca && (!set || set->n >= cap)) {
      int ncap = cap ? cap * 2 : 4;
      struct crl_set *grown = realloc(set, sizeof *set + (size_t)ncap * sizeof set->v[0]);
      if (grown) {
        if (!set)
          grown->n = 0;
        set = grown;
        cap = ncap;
      } else {
        ca = NULL;
      }
    }
    if (ca && X509_CRL_up_ref(crl))
      set->v[set->n++] = (struct crl_verified){.crl = crl, .ca = ca};
    else
      all_verified = false;
    X509_STORE_add_crl(st, crl);
    X509_CRL_free(crl);
    ncrl++;
  }
  ERR_clear_error();
  BIO_free(b);
  if (!ncrl) {
    crl_set_free(NULL, set, NULL, 0, 0, NULL);
    X509_STORE_free(st);
    return NULL;
  }
  if (all_verified && set && X509_STORE_set_ex_data(st, crl_set_index, set)) {
    X509_STORE_set_check_crl(st, check_crl_verified);
  } else {
    crl_set_free(NULL, set, NULL, 0, 0, NULL);
    bg_info("revocation list %s: CRL signatures are checked on every verification", p->crl_file);
  }
  X509_STORE_set_flags(st, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL | X509_V_FLAG_X509_STRICT);
  *min_next = earliest;
  *max_last = latest;
  return st;
}

/* Returns a referenced store that is current with the CRL file, or NULL when revocation data
 * is unavailable (file gone, unreadable or without a CRL); *gen and *max_last describe it. */
static X509_STORE *current_store_gen(struct acct_pki *p, time_t *min_next, time_t *max_last,
                                     unsigned long *gen)
{
  struct stat st;
  X509_STORE *out = NULL;
  pthread_mutex_lock(&p->mu);
  if (stat(p->crl_file, &st) != 0) {
    /* fail closed: a CRL we can no longer see is not trusted from memory either */
    if (p->store)
      p->generation++;
    X509_STORE_free(p->store);
    p->store = NULL;
  } else if (!p->store || st.st_ino != p->loaded.st_ino || st.st_mtim.tv_sec != p->loaded.st_mtim.tv_sec ||
             st.st_mtim.tv_nsec != p->loaded.st_mtim.tv_nsec || st.st_size != p->loaded.st_size) {
    time_t mn = 0, ml = 0;
    X509_STORE *fresh = build_store(p, &mn, &ml);
    X509_STORE_free(p->store);
    p->store = fresh;
    p->min_next_update = mn;
    p->max_last_update = ml;
    p->generation++;
    p->loaded = st;
    if (fresh)
      bg_info("loaded revocation list %s", p->crl_file);
    else
      bg_warn("revocation list %s holds no CRL", p->crl_file);
  }
  if (p->store && X509_STORE_up_ref(p->store)) {
    out = p->store;
    *min_next = p->min_next_update;
    *max_last = p->max_last_update;
    *gen = p->generation;
  }
  pthread_mutex_unlock(&p->mu);
  return out;
}

static X509_STORE *current_store(struct acct_pki *p, time_t *min_next)
{
  time_t ml;
  unsigned long gen;
  return current_store_gen(p, min_next, &ml, &gen);
}

bool acct_pki_revocation_ok(struct acct_pki *p, time_t now)
{
  time_t mn;
  X509_STORE *st = current_store(p, &mn);
  X509_STORE_free(st);
  return st && mn > now;
}

/* The window in which a successful chain check stays true: every chain certificate and CRL
 * valid. Zero-width when a time cannot be read (then it is not cached). */
static void chain_window(X509_STORE_CTX *ctx, time_t min_next, time_t max_last, time_t *from, time_t *until)
{
  *from = max_last;
  *until = min_next;
  STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(ctx);
  for (int i = 0; i < sk_X509_num(chain); i++) {
    X509 *x = sk_X509_value(chain, i);
    time_t nb = asn1_time(X509_get0_notBefore(x)), na = asn1_time(X509_get0_notAfter(x));
    if (!nb || !na) {
      *until = *from;
      return;
    }
    if (nb > *from)
      *from = nb;
    if (na < *until)
      *until = na;
  }
}

enum acct_cert_err acct_pki_verify(struct acct_pki *p, X509 *cert, time_t now, char *detail, size_t dlen)
{
  time_t min_next, max_last;
  unsigned long gen;
  X509_STORE *st = current_store_gen(p, &min_next, &max_last, &gen);
  if (!st) {
    snprintf(detail, dlen, "the revocation list is missing");
    return ACCT_CERT_REVOCATION_UNAVAILABLE;
  }
  if (min_next <= now) {
    X509_STORE_free(st);
    snprintf(detail, dlen, "the revocation list is past its next update");
    return ACCT_CERT_REVOCATION_UNAVAILABLE;
  }
  unsigned char key[32];
  unsigned keylen = 0;
  pthread_once(&caches_once, caches_init);
  bool keyed = verify_cache && sha256_md && X509_digest(cert, sha256_md, key, &keylen) && keylen == 32;
  struct verify_entry *set = keyed ? &verify_cache[set_of(key, VERIFY_SETS)] : NULL;
  bool hit = false;
  if (set) {
    pthread_mutex_lock(&cache_mu);
    for (int w = 0; w < CACHE_WAYS && !hit; w++) {
      struct verify_entry *v = &set[w];
      if (v->used && memcmp(v->key, key, 32) == 0) {
        hit = v->generation == gen && v->from <= now && now < v->until;
        v->used = ++cache_clock;
      }
    }
    pthread_mutex_unlock(&cache_mu);
  }
  X509_STORE_CTX *ctx = NULL;
  enum acct_cert_err rc = ACCT_CERT_UNTRUSTED;
  if (hit) {
    rc = ACCT_CERT_OK;
    goto key_usage;
  }
  ctx = X509_STORE_CTX_new();
  if (!ctx || !X509_STORE_CTX_init(ctx, st, cert, NULL)) {
    snprintf(detail, dlen, "verification context failed");
    goto done;
  }
  X509_STORE_CTX_set_time(ctx, 0, now);
  if (X509_verify_cert(ctx) == 1) {
    rc = ACCT_CERT_OK;
    if (set) {
      time_t from, until;
      chain_window(ctx, min_next, max_last, &from, &until);
      pthread_mutex_lock(&cache_mu);
      /* the entry of this certificate, else the least recently used one */
      struct verify_entry *v = &set[0];
      for (int w = 0; w < CACHE_WAYS; w++) {
        if (set[w].used && memcmp(set[w].key, key, 32) == 0) {
          v = &set[w];
          break;
        }
        if (set[w].used < v->used)
          v = &set[w];
      }
      memcpy(v->key, key, 32);
      v->generation = gen;
      v->from = from;
      v->until = until;
      v->used = ++cache_clock;
      pthread_mutex_unlock(&cache_mu);
    }
  } else {
    int e = X509_STORE_CTX_get_error(ctx);
    snprintf(detail, dlen, "%s", X509_verify_cert_error_string(e));
    switch (e) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID:
      /* an expired intermediate is a trust problem, an expired leaf is the holder's */
      rc = X509_STORE_CTX_get_error_depth(ctx) == 0 ? ACCT_CERT_EXPIRED : ACCT_CERT_UNTRUSTED;
      break;
    case X509_V_ERR_CERT_REVOKED:
      rc = ACCT_CERT_REVOKED;
      break;
    case X509_V_ERR_UNABLE_TO_GET_CRL:
    case X509_V_ERR_CRL_HAS_EXPIRED:
    case X509_V_ERR_CRL_NOT_YET_VALID:
    case X509_V_ERR_CRL_SIGNATURE_FAILURE:
    case X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER:
    case X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE:
    case X509_V_ERR_ERROR_IN_CRL_LAST_UPDATE_FIELD:
    case X509_V_ERR_ERROR_IN_CRL_NEXT_UPDATE_FIELD:
      rc = ACCT_CERT_REVOCATION_UNAVAILABLE;
      break;
    default:
      rc = ACCT_CERT_UNTRUSTED;
    }
  }
key_usage:
  if (rc == ACCT_CERT_OK) {
    /* Key usage must allow signatures; no EKU is required (MOICA certificates have none). */
    uint32_t ku = X509_get_key_usage(cert);
    if (!(X509_get_extension_flags(cert) & EXFLAG_KUSAGE) || !(ku & KU_DIGITAL_SIGNATURE)) {
      snprintf(detail, dlen, "key usage does not include digitalSignature");
      rc = ACCT_CERT_KEY_USAGE;
    }
  }
done:
  ERR_clear_error();
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(st);
  return rc;
}

X509 *acct_cert_parse_cached(const char *text, struct acct_cert_info *info)
{
  unsigned char key[32];
  if (!text || !sha256(text, strlen(text), key) || !parse_cache) {
    X509 *x = acct_cert_parse(text);
    if (x && !acct_cert_info(x, info))
      memset(info, 0, sizeof *info);
    return x;
  }
  struct parse_entry *set = &parse_cache[set_of(key, PARSE_SETS)];
  X509 *x = NULL;
  pthread_mutex_lock(&cache_mu);
  for (int w = 0; w < CACHE_WAYS && !x; w++) {
    struct parse_entry *e = &set[w];
    if (e->cert && memcmp(e->key, key, 32) == 0 && X509_up_ref(e->cert)) {
      x = e->cert;
      *info = e->info;
      e->used = ++cache_clock;
    }
  }
  pthread_mutex_unlock(&cache_mu);
  if (x)
    return x;
  if (!(x = acct_cert_parse(text)))
    return NULL;
  if (!acct_cert_info(x, info)) {
    memset(info, 0, sizeof *info);
    return x; /* not cached: a certificate without a CN is refused later anyway */
  }
  if (X509_up_ref(x)) {
    pthread_mutex_lock(&cache_mu);
    /* an empty way, else the least recently used one (a racing thread may have put this
     * certificate in already: then the older copy goes) */
    struct parse_entry *e = &set[0];
    for (int w = 0; w < CACHE_WAYS; w++) {
      if (set[w].cert && memcmp(set[w].key, key, 32) == 0) {
        e = &set[w];
        break;
      }
      if (set[w].used < e->used)
        e = &set[w];
    }
    X509 *old = e->cert;
    e->cert = x;
    memcpy(e->key, key, 32);
    e->info = *info;
    e->used = ++cache_clock;
    pthread_mutex_unlock(&cache_mu);
    X509_free(old);
  }
  return x;
}

X509 *acct_cert_parse(const char *text)
{
  if (!text)
    return NULL;
  X509 *x = NULL;
  if (strstr(text, "-----BEGIN CERTIFICATE-----")) {
    BIO *b = BIO_new_mem_buf(text, -1);
    x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
  } else {
    size_t n;
    unsigned char *der = bg_b64_decode(text, &n);
    const unsigned char *q = der;
    if (der && n > 0 && n < 65536) {
      x = d2i_X509(NULL, &q, (long)n);
      if (x && q != der + n) { /* trailing garbage */
        X509_free(x);
        x = NULL;
      }
    }
    free(der);
  }
  ERR_clear_error();
  return x;
}

char *acct_cert_pem(X509 *cert)
{
  BIO *b = BIO_new(BIO_s_mem());
  char *out = NULL;
  if (b && PEM_write_bio_X509(b, cert)) {
    char *data;
    long n = BIO_get_mem_data(b, &data);
    if ((out = malloc((size_t)n + 1))) {
      memcpy(out, data, (size_t)n);
      out[n] = '\0';
    }
  }
  BIO_free(b);
  return out;
}

/* Subject Directory Attributes (2.5.29.9) ::= SEQUENCE OF Attribute;
 * Attribute ::= SEQUENCE { type OID, values SET OF value }. MOICA puts the last four digits
 * of the holder's national ID in the attribute 2.16.886.1.100.2.51. */
static void sda_last4(X509 *cert, char out[8])
{
  out[0] = '\0';
  ASN1_OBJECT *sda = OBJ_txt2obj("2.5.29.9", 1);
  ASN1_OBJECT *want = OBJ_txt2obj("2.16.886.1.100.2.51", 1);
  int idx = sda ? X509_get_ext_by_OBJ(cert, sda, -1) : -1;
  if (idx >= 0) {
    ASN1_OCTET_STRING *os = X509_EXTENSION_get_data(X509_get_ext(cert, idx));
    const unsigned char *q = ASN1_STRING_get0_data(os);
    ASN1_SEQUENCE_ANY *attrs = d2i_ASN1_SEQUENCE_ANY(NULL, &q, ASN1_STRING_length(os));
    for (int i = 0; attrs && i < sk_ASN1_TYPE_num(attrs) && !out[0]; i++) {
      ASN1_TYPE *a = sk_ASN1_TYPE_value(attrs, i);
      if (a->type != V_ASN1_SEQUENCE)
        continue;
      const unsigned char *aq = a->value.sequence->data;
      ASN1_SEQUENCE_ANY *pair = d2i_ASN1_SEQUENCE_ANY(NULL, &aq, a->value.sequence->length);
      if (pair && sk_ASN1_TYPE_num(pair) == 2) {
        ASN1_TYPE *t = sk_ASN1_TYPE_value(pair, 0), *v = sk_ASN1_TYPE_value(pair, 1);
        if (t->type == V_ASN1_OBJECT && OBJ_cmp(t->value.object, want) == 0 && v->type == V_ASN1_SET) {
          const unsigned char *vq = v->value.set->data;
          ASN1_SEQUENCE_ANY *vals = d2i_ASN1_SET_ANY(NULL, &vq, v->value.set->length);
          ASN1_TYPE *first = vals && sk_ASN1_TYPE_num(vals) > 0 ? sk_ASN1_TYPE_value(vals, 0) : NULL;
          if (first && (first->type == V_ASN1_PRINTABLESTRING || first->type == V_ASN1_UTF8STRING ||
                        first->type == V_ASN1_IA5STRING || first->type == V_ASN1_NUMERICSTRING)) {
            int len = ASN1_STRING_length(first->value.asn1_string);
            if (len > 0 && len < 8) {
              memcpy(out, ASN1_STRING_get0_data(first->value.asn1_string), (size_t)len);
              out[len] = '\0';
            }
          }
          sk_ASN1_TYPE_pop_free(vals, ASN1_TYPE_free);
        }
      }
      sk_ASN1_TYPE_pop_free(pair, ASN1_TYPE_free);
    }
    sk_ASN1_TYPE_pop_free(attrs, ASN1_TYPE_free);
  }
  ASN1_OBJECT_free(sda);
  ASN1_OBJECT_free(want);
  ERR_clear_error();
}

bool acct_cert_info(X509 *cert, struct acct_cert_info *out)
{
  memset(out, 0, sizeof *out);
  X509_NAME *subj = X509_get_subject_name(cert);
  int i = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
  if (i < 0)
    return false;
  unsigned char *utf8 = NULL;
  int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, i)));
  if (n <= 0 || (size_t)n >= sizeof out->cn) {
    OPENSSL_free(utf8);
    return false;
  }
  memcpy(out->cn, utf8, (size_t)n);
  out->cn[n] = '\0';
  OPENSSL_free(utf8);
  sda_last4(cert, out->id_last4);
  BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
  char *hex = bn ? BN_bn2hex(bn) : NULL;
  snprintf(out->serial, sizeof out->serial, "%s", hex ? hex : "");
  OPENSSL_free(hex);
  BN_free(bn);
  BIO *b = BIO_new(BIO_s_mem());
  X509_NAME_print_ex(b, X509_get_issuer_name(cert), 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
  int len = BIO_read(b, out->issuer, sizeof out->issuer - 1);
  out->issuer[len > 0 ? len : 0] = '\0';
  BIO_free(b);
  unsigned char md[32];
  unsigned int mdlen = 0;
  X509_digest(cert, EVP_sha256(), md, &mdlen);
  bg_hex(md, 32, out->fingerprint);
  out->not_before = asn1_time(X509_get0_notBefore(cert));
  out->not_after = asn1_time(X509_get0_notAfter(cert));
  return true;
}

bool acct_sig_verify_raw(X509 *cert, const unsigned char *data, size_t n, const unsigned char *sig, size_t siglen)
{
  EVP_PKEY *pk = X509_get0_pubkey(cert);
  if (!pk || siglen == 0 || siglen > 1024)
    return false;
  unsigned char *der = NULL;
  const unsigned char *use = sig;
  size_t uselen = siglen;
  if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_EC && siglen == 64) {
    /* raw R||S, as WebCrypto and some card middleware produce */
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
    if (es && r && s && ECDSA_SIG_set0(es, r, s)) {
      int dl = i2d_ECDSA_SIG(es, &der);
      if (dl > 0) {
        use = der;
        uselen = (size_t)dl;
      }
    } else {
      BN_free(r);
      BN_free(s);
    }
    ECDSA_SIG_free(es);
  }
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  bool ok = md && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pk) == 1 &&
            EVP_DigestVerify(md, use, uselen, data, n) == 1;
  EVP_MD_CTX_free(md);
  OPENSSL_free(der);
  ERR_clear_error();
  return ok;
}

X509 *acct_cms_verify(const unsigned char *der, size_t len, const unsigned char *data, size_t n, bool *malformed)
{
  *malformed = false;
  BIO *in = BIO_new_mem_buf(der, (int)len);
  CMS_ContentInfo *cms = in ? d2i_CMS_bio(in, NULL) : NULL;
  BIO_free(in);
  X509 *signer = NULL;
  if (!cms || OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed) {
    *malformed = true;
    goto done;
  }
  STACK_OF(CMS_SignerInfo) *sis = CMS_get0_SignerInfos(cms);
  if (sk_CMS_SignerInfo_num(sis) != 1) {
    *malformed = true;
    goto done;
  }
  BIO *content = BIO_new_mem_buf(data, (int)n);
  BIO *out = BIO_new(BIO_s_mem());
  /* CMS_BINARY: the nonce is hashed as is, never CRLF-normalised. The chain is checked by
   * acct_pki_verify, with our own error codes, so only the signature is checked here. */
  unsigned flags = CMS_BINARY | CMS_NO_SIGNER_CERT_VERIFY;
  int ok;
  if (CMS_is_detached(cms)) {
    ok = CMS_verify(cms, NULL, NULL, content, out, flags);
  } else {
    /* Attached content must be exactly the nonce. */
    ok = CMS_verify(cms, NULL, NULL, NULL, out, flags);
    char *got;
    long gl = BIO_get_mem_data(out, &got);
    if (ok && (gl != (long)n || memcmp(got, data, n) != 0))
      ok = 0;
  }
  BIO_free(content);
  BIO_free(out);
  if (ok == 1) {
    STACK_OF(X509) *signers = CMS_get0_signers(cms);
    if (signers && sk_X509_num(signers) == 1) {
      signer = sk_X509_value(signers, 0);
      X509_up_ref(signer);
    }
    sk_X509_free(signers);
  }
done:
  CMS_ContentInfo_free(cms);
  ERR_clear_error();
  return signer;
}
