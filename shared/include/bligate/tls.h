/* TLS on the common server (libmicrohttpd's GnuTLS), for the one service that serves TLS
 * itself: the BLI sandbox, which like the real BLI service demands the agency's client
 * certificate (mutual TLS). The bligate services sit behind the gateway and serve plain HTTP. */
#ifndef BLIGATE_TLS_H
#define BLIGATE_TLS_H
#include <microhttpd.h>
#include <stdbool.h>

struct bg_server_cfg;

/* The daemon flag and options for cfg's tls_* files (read here, into memory; a missing or
 * unreadable file exits 2 naming its variable). Returns how many options were written to opts
 * (room for 4 plus the terminating MHD_OPTION_END); 0 without TLS. */
size_t bg_tls_mhd_options(const struct bg_server_cfg *cfg, unsigned *flags, struct MHD_OptionItem opts[5]);
/* The connection presented a client certificate that chains to the configured client CA. */
bool bg_tls_peer_verified(struct MHD_Connection *conn);

#endif
