/* loginbench: certificate logins per second against the bligate accounts API, end to end over
 * HTTP, the way a client does them:
 *
 *   POST /v1/auth/challenges {}                               -> 201 {challenge_id, nonce, ...}
 *   sign the nonce (UTF-8 bytes) with the account's key: ECDSA P-256 / SHA-256, DER, base64
 *   POST /v1/auth/sessions {challenge_id, certificate (PEM), signature}   -> 201 {access_token, ...}
 *
 * N threads, each with its own keep-alive libcurl easy handle, loop over their share of the
 * accounts (thread t takes accounts t, t+N, t+2N, ...; with at least N accounts no two threads
 * ever log in as the same account, so logins do not queue on one account's row lock) until the
 * deadline. A login counts as a success when both steps answered 201 and the session reply
 * carries an access token. Time per login is challenge + signature + session.
 *
 *   loginbench --url http://127.0.0.1:PORT --accounts FILE [--threads 16] [--duration 10]
 *              [--warmup 2] [--timeout 10] [--label NAME]
 *
 * FILE: one account per line, "<cert.pem> <key.pem>" (absolute paths; '#' lines ignored).
 * Output: a human line on stderr and one machine line on stdout:
 *   RESULT label=... threads=N seconds=S logins=K failures=F rate=R p50_ms=A p90_ms=B p99_ms=C max_ms=D
 *          attempts_all=M   (M: every attempt, warm-up included, for CPU-per-login figures)
 * Exit status: 0 when at least one login succeeded and none failed, 1 when some failed,
 * 2 on bad arguments or set-up errors. Bounded: it stops at warmup + duration (+ timeout).
 *
 * Build (bench/run does this): cc -O2 -std=c17 -pthread loginbench.c -lcurl -lcrypto
 */
#define _POSIX_C_SOURCE 200809L
#include <curl/curl.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_BODY (256 * 1024) /* responses are a few KiB; anything larger is an error */
#define MAX_FAIL_SAMPLES 5

struct account {
  char *cert_json; /* the PEM as a JSON string literal, quotes included */
  EVP_PKEY *key;
};

struct buf {
  char *p;
  size_t n, cap;
  bool overflow;
};

struct worker {
  pthread_t th;
  int id;
  long ok, failed;
  long attempts; /* every login attempt, warm-up included */
  long status_counts[6]; /* measured replies; 0: transport error, 1..5: 1xx..5xx */
  uint32_t *lat_us;      /* measured successful logins */
  size_t nlat, caplat;
};

static const char *g_url;
static int g_threads = 16, g_duration = 10, g_warmup = 2, g_timeout = 10;
static const char *g_label = "login";
static struct account *g_acc;
static int g_nacc;
static double g_t_measure, g_t_end; /* CLOCK_MONOTONIC seconds */
static pthread_mutex_t g_fail_mu = PTHREAD_MUTEX_INITIALIZER;
static int g_fail_samples;

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "loginbench: ");
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(2);
}

static char *read_file(const char *path, size_t *len)
{
  FILE *f = fopen(path, "rb");
  if (!f)
    die("cannot open %s", path);
  size_t cap = 4096, n = 0;
  char *p = malloc(cap);
  for (;;) {
    if (n + 1024 > cap)
      p = realloc(p, cap *= 2);
    size_t k = fread(p + n, 1, cap - n - 1, f);
    if (k == 0)
      break;
    n += k;
  }
  fclose(f);
  p[n] = 0;
  if (len)
    *len = n;
  return p;
}

/* A JSON string literal of s (PEM: ASCII with newlines). */
static char *json_string_lit(const char *s)
{
  size_t n = strlen(s);
  char *out = malloc(n * 6 + 3), *o = out;
  *o++ = '"';
  for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
    if (*c == '"' || *c == '\\') {
      *o++ = '\\';
      *o++ = (char)*c;
    } else if (*c == '\n') {
      *o++ = '\\';
      *o++ = 'n';
    } else if (*c == '\r') {
      *o++ = '\\';
      *o++ = 'r';
    } else if (*c < 0x20) {
      /* out was sized for 6 bytes per input byte: "\u00XX" fits */
      o += snprintf(o, 7, "\\u%04x", *c);
    } else {
      *o++ = (char)*c;
    }
  }
  *o++ = '"';
  *o = 0;
  return out;
}

static void load_accounts(const char *file)
{
  char *text = read_file(file, NULL);
  int cap = 16;
  g_acc = calloc((size_t)cap, sizeof *g_acc);
  char *save = NULL;
  for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    while (*line == ' ' || *line == '\t')
      line++;
    if (!*line || *line == '#')
      continue;
    char cert_path[4096], key_path[4096];
    if (sscanf(line, "%4095s %4095s", cert_path, key_path) != 2)
      die("bad line in the accounts file: %s", line);
    if (g_nacc == cap)
      g_acc = realloc(g_acc, sizeof *g_acc * (size_t)(cap *= 2));
    char *pem = read_file(cert_path, NULL);
    if (!strstr(pem, "-----BEGIN CERTIFICATE-----"))
      die("%s is not a PEM certificate", cert_path);
    FILE *kf = fopen(key_path, "rb");
    if (!kf)
      die("cannot open %s", key_path);
    EVP_PKEY *key = PEM_read_PrivateKey(kf, NULL, NULL, NULL);
    fclose(kf);
    if (!key)
      die("cannot read the private key %s", key_path);
    g_acc[g_nacc].cert_json = json_string_lit(pem);
    g_acc[g_nacc].key = key;
    g_nacc++;
    free(pem);
  }
  free(text);
  if (g_nacc == 0)
    die("no accounts in %s", file);
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
  struct buf *b = ud;
  size_t n = size * nmemb;
  if (b->n + n + 1 > MAX_BODY) {
    b->overflow = true;
    return 0; /* aborts the transfer */
  }
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->n + n + 1)
      cap *= 2;
    b->p = realloc(b->p, cap);
    b->cap = cap;
  }
  memcpy(b->p + b->n, data, n);
  b->n += n;
  b->p[b->n] = 0;
  return n;
}

/* The value of "key":"..." in a flat JSON reply (the fields we read are plain tokens:
 * a UUID and a base64url nonce, so no unescaping is needed). */
static bool json_field(const char *body, const char *key, char *out, size_t outlen)
{
  char pat[64];
  snprintf(pat, sizeof pat, "\"%s\"", key);
  const char *p = strstr(body, pat);
  if (!p)
    return false;
  p += strlen(pat);
  while (*p == ' ' || *p == ':')
    p++;
  if (*p != '"')
    return false;
  p++;
  size_t i = 0;
  while (*p && *p != '"' && *p != '\\' && i + 1 < outlen)
    out[i++] = *p++;
  if (*p != '"')
    return false;
  out[i] = 0;
  return i > 0;
}

static void fail_sample(const char *what, long status, const char *body)
{
  pthread_mutex_lock(&g_fail_mu);
  if (g_fail_samples < MAX_FAIL_SAMPLES) {
    g_fail_samples++;
    fprintf(stderr, "loginbench: %s failed: HTTP %ld: %.300s\n", what, status, body ? body : "(no body)");
  }
  pthread_mutex_unlock(&g_fail_mu);
}

/* POST url body; returns the HTTP status (0 on a transport error). */
static long post(CURL *h, const char *url, const char *body, struct buf *resp)
{
  resp->n = 0;
  resp->overflow = false;
  if (resp->p)
    resp->p[0] = 0;
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
  CURLcode rc = curl_easy_perform(h);
  if (rc != CURLE_OK) {
    fail_sample(url, 0, curl_easy_strerror(rc));
    return 0;
  }
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  return status;
}

static bool sign_b64(EVP_PKEY *key, const char *msg, char *out, size_t outlen)
{
  unsigned char sig[256];
  size_t siglen = sizeof sig;
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  bool ok = md && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
            EVP_DigestSign(md, sig, &siglen, (const unsigned char *)msg, strlen(msg)) == 1;
  EVP_MD_CTX_free(md);
  if (!ok || outlen < 4 * ((siglen + 2) / 3) + 1)
    return false;
  EVP_EncodeBlock((unsigned char *)out, sig, (int)siglen);
  return true;
}

static void count_status(struct worker *w, long status)
{
  int k = status >= 100 && status < 600 ? (int)(status / 100) : 0;
  w->status_counts[k]++;
}

static void *run_worker(void *arg)
{
  struct worker *w = arg;
  CURL *h = curl_easy_init();
  if (!h)
    return NULL;
  char url_ch[1024], url_se[1024];
  snprintf(url_ch, sizeof url_ch, "%s/v1/auth/challenges", g_url);
  snprintf(url_se, sizeof url_se, "%s/v1/auth/sessions", g_url);
  struct curl_slist *hdr = NULL;
  hdr = curl_slist_append(hdr, "Content-Type: application/json");
  hdr = curl_slist_append(hdr, "Accept: application/json");
  hdr = curl_slist_append(hdr, "Expect:"); /* no 100-continue round trip on bodies > 1 KiB */
  struct buf resp = {0};
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 3L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)g_timeout);
  curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http");
  curl_easy_setopt(h, CURLOPT_USERAGENT, "bligate-loginbench/1");
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp);

  size_t bodycap = 16384;
  char *body = malloc(bodycap);
  long k = 0;
  for (;;) {
    double t0 = now_s();
    if (t0 >= g_t_end)
      break;
    /* with at least N accounts, thread t cycles over t, t+N, ... below the largest multiple of N;
     * with fewer, threads share accounts */
    int ai;
    if (g_nacc >= g_threads)
      ai = w->id + (int)(k % (g_nacc / g_threads)) * g_threads;
    else
      ai = (int)((w->id + k) % g_nacc);
    k++;
    w->attempts++;
    struct account *a = &g_acc[ai];
    bool ok = false;
    long st = post(h, url_ch, "{}", &resp), st2 = -1;
    char cid[80], nonce[128], sig[200];
    if (st != 201 || !json_field(resp.p ? resp.p : "", "challenge_id", cid, sizeof cid) ||
        !json_field(resp.p, "nonce", nonce, sizeof nonce)) {
      if (st)
        fail_sample("POST /v1/auth/challenges", st, resp.p);
    } else if (!sign_b64(a->key, nonce, sig, sizeof sig)) {
      fail_sample("signing", 0, "EVP_DigestSign failed");
    } else {
      size_t need = strlen(a->cert_json) + strlen(cid) + strlen(sig) + 100;
      if (need > bodycap)
        body = realloc(body, bodycap = need);
      snprintf(body, bodycap, "{\"challenge_id\":\"%s\",\"certificate\":%s,\"signature\":\"%s\"}", cid, a->cert_json,
               sig);
      st2 = post(h, url_se, body, &resp);
      if (st2 == 201 && resp.p && strstr(resp.p, "\"access_token\""))
        ok = true;
      else if (st2)
        fail_sample("POST /v1/auth/sessions", st2, resp.p);
    }
    double t1 = now_s();
    if (t0 < g_t_measure || t1 > g_t_end)
      continue; /* warm-up, or finished after the deadline */
    count_status(w, st);
    if (st2 >= 0)
      count_status(w, st2);
    if (!ok) {
      w->failed++;
      continue;
    }
    w->ok++;
    if (w->nlat == w->caplat) {
      w->caplat = w->caplat ? w->caplat * 2 : 4096;
      w->lat_us = realloc(w->lat_us, w->caplat * sizeof *w->lat_us);
    }
    double us = (t1 - t0) * 1e6;
    w->lat_us[w->nlat++] = us > 4e9 ? 4000000000u : (uint32_t)us;
  }
  free(body);
  free(resp.p);
  curl_slist_free_all(hdr);
  curl_easy_cleanup(h);
  return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static int int_arg(const char *name, const char *v, int lo, int hi)
{
  char *end;
  errno = 0;
  long x = strtol(v, &end, 10);
  if (errno || *end || x < lo || x > hi)
    die("bad value for %s", name);
  return (int)x;
}

static void usage(void)
{
  fprintf(stderr, "usage: loginbench --url http://127.0.0.1:PORT --accounts FILE [--threads N] [--duration S]\n"
                  "                  [--warmup S] [--timeout S] [--label NAME]\n");
  exit(2);
}

int main(int argc, char **argv)
{
  const char *accounts = NULL;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (i + 1 >= argc)
      usage();
    const char *v = argv[++i];
    if (!strcmp(a, "--url"))
      g_url = v;
    else if (!strcmp(a, "--accounts"))
      accounts = v;
    else if (!strcmp(a, "--threads"))
      g_threads = int_arg(a, v, 1, 1024);
    else if (!strcmp(a, "--duration"))
      g_duration = int_arg(a, v, 1, 3600);
    else if (!strcmp(a, "--warmup"))
      g_warmup = int_arg(a, v, 0, 600);
    else if (!strcmp(a, "--timeout"))
      g_timeout = int_arg(a, v, 1, 600);
    else if (!strcmp(a, "--label"))
      g_label = v;
    else
      usage();
  }
  if (!g_url || !accounts)
    usage();
  if (strncmp(g_url, "http://127.", 11) != 0 && strncmp(g_url, "http://localhost", 16) != 0 &&
      strncmp(g_url, "http://[::1]", 12) != 0)
    die("refusing %s: loopback addresses only", g_url);

  if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
    die("curl_global_init failed");
  load_accounts(accounts);
  if (g_nacc < g_threads)
    fprintf(stderr, "loginbench: warning: %d accounts for %d threads: some threads share accounts\n", g_nacc,
            g_threads);

  struct worker *ws = calloc((size_t)g_threads, sizeof *ws);
  double start = now_s();
  g_t_measure = start + g_warmup;
  g_t_end = g_t_measure + g_duration;
  for (int i = 0; i < g_threads; i++) {
    ws[i].id = i;
    if (pthread_create(&ws[i].th, NULL, run_worker, &ws[i]) != 0)
      die("pthread_create failed");
  }
  long ok = 0, failed = 0, attempts = 0, sc[6] = {0};
  size_t nlat = 0;
  for (int i = 0; i < g_threads; i++) {
    pthread_join(ws[i].th, NULL);
    ok += ws[i].ok;
    failed += ws[i].failed;
    attempts += ws[i].attempts;
    nlat += ws[i].nlat;
    for (int j = 0; j < 6; j++)
      sc[j] += ws[i].status_counts[j];
  }
  uint32_t *all = malloc((nlat ? nlat : 1) * sizeof *all);
  size_t off = 0;
  for (int i = 0; i < g_threads; i++) {
    if (ws[i].nlat)
      memcpy(all + off, ws[i].lat_us, ws[i].nlat * sizeof *all);
    off += ws[i].nlat;
    free(ws[i].lat_us);
  }
  qsort(all, nlat, sizeof *all, cmp_u32);
#define PCT(p) (nlat ? all[(size_t)((double)(nlat - 1) * (p))] / 1000.0 : 0.0)
  double rate = (double)ok / g_duration;
  fprintf(stderr,
          "loginbench %s: %d threads, %d accounts, %ds (+%ds warm-up): %ld logins, %ld failed, %.0f logins/s, "
          "p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms (HTTP replies 2xx %ld 4xx %ld 5xx %ld, transport "
          "errors %ld)\n",
          g_label, g_threads, g_nacc, g_duration, g_warmup, ok, failed, rate, PCT(0.50), PCT(0.90), PCT(0.99),
          PCT(1.0), sc[2], sc[4], sc[5], sc[0]);
  printf("RESULT label=%s threads=%d accounts=%d seconds=%d logins=%ld failures=%ld rate=%.1f p50_ms=%.2f "
         "p90_ms=%.2f p99_ms=%.2f max_ms=%.2f attempts_all=%ld\n",
         g_label, g_threads, g_nacc, g_duration, ok, failed, rate, PCT(0.50), PCT(0.90), PCT(0.99), PCT(1.0),
         attempts);
  free(all);
  free(ws);
  for (int i = 0; i < g_nacc; i++) {
    free(g_acc[i].cert_json);
    EVP_PKEY_free(g_acc[i].key);
  }
  free(g_acc);
  curl_global_cleanup();
  return ok > 0 && failed == 0 ? 0 : 1;
}
