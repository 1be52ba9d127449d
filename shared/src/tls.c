/* TLS options and the client-certificate check of the common server (tls.h). libmicrohttpd asks
 * for a client certificate when it has a trust list (GNUTLS_CERT_REQUEST) but completes the
 * handshake without one, so every request is checked here before it is routed. */
#include "bligate/tls.h"
#include "bligate/config.h"
#include "bligate/http.h"
#include <gnutls/gnutls.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static char *pem_of(const char *var, const char *path)
{
  FILE *f = fopen(path, "r");
  char *buf = NULL;
  size_t n = 0;
  if (f) {
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = len > 0 && len < (1 << 20) ? calloc(1, (size_t)len + 1) : NULL;
    n = buf ? fread(buf, 1, (size_t)len, f) : 0;
    fclose(f);
  }
  if (!buf || n == 0) {
    fprintf(stderr, "configuration error: %s (%s) cannot be read\n", var, path);
    exit(2);
  }
  return buf;
}

size_t bg_tls_mhd_options(const struct bg_server_cfg *cfg, unsigned *flags, struct MHD_OptionItem opts[5])
{
  size_t n = 0;
  if (cfg->tls_cert_file) {
    /* kept for the daemon's lifetime (libmicrohttpd does not copy them); the server frees them */
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0,
                                        pem_of("the TLS certificate file", cfg->tls_cert_file)};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, pem_of("the TLS key file", cfg->tls_key_file)};
    if (cfg->tls_client_ca_file)
      opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0,
                                          pem_of("the TLS client CA file", cfg->tls_client_ca_file)};
    *flags |= MHD_USE_TLS;
  }
  opts[n] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
  return n;
}

/* The chain check costs an ECDSA verification and an ASN.1 parse per certificate; on a kept-alive
 * connection it was most of the sandbox's CPU per request. libmicrohttpd serves each connection
 * on its own thread, so the thread remembers the session and leaf certificate it verified last and
 * repeats the check only for another session, another certificate (a renegotiation) or after
 * REVERIFY_US, when the certificate may have expired meanwhile. */
#define REVERIFY_US (60 * 1000000LL)

static _Thread_local struct {
  gnutls_session_t session;
  unsigned char der[4096];
  unsigned len;
  int64_t at_us;
} verified;

bool bg_tls_peer_verified(struct MHD_Connection *conn)
{
  const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
  gnutls_session_t session = ci ? (gnutls_session_t)ci->tls_session : NULL;
  unsigned int status = 0, npeers = 0;
  const gnutls_datum_t *peers = session ? gnutls_certificate_get_peers(session, &npeers) : NULL;
  if (!peers || npeers == 0)
    return false;
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  int64_t now_us = (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
  if (verified.session == session && verified.len == peers[0].size && now_us - verified.at_us < REVERIFY_US &&
      memcmp(verified.der, peers[0].data, peers[0].size) == 0)
    return true;
  verified.session = NULL;
  if (gnutls_certificate_verify_peers2(session, &status) != GNUTLS_E_SUCCESS || status != 0)
    return false;
  if (peers[0].size <= sizeof verified.der) {
    memcpy(verified.der, peers[0].data, peers[0].size);
    verified.len = peers[0].size;
    verified.session = session;
    verified.at_us = now_us;
  }
  return true;
}
