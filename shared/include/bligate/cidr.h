/* Address ranges (CIDR) for the list of gateways whose X-Forwarded-For a service believes
 * (BLIGATE_TRUSTED_PROXIES): on Kubernetes the gateway pods change address, so the operator
 * names the pod network ("10.244.0.0/16") rather than addresses. */
#ifndef BLIGATE_CIDR_H
#define BLIGATE_CIDR_H
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct bg_cidr {
  int family; /* AF_INET or AF_INET6 */
  unsigned char addr[16];
  unsigned prefix; /* bits that must match */
};

/* Parses a comma- or space-separated list of addresses ("10.0.0.5": that address alone) and
 * ranges ("10.244.0.0/16", "fd00::/8") into out (at most max). False on a bad entry, which is
 * named in err: an address with bits set beyond its prefix ("10.0.0.5/8") is refused too, since
 * it is more likely a typo than a range. An empty list is valid (n = 0). */
bool bg_cidr_parse_list(const char *list, struct bg_cidr *out, size_t max, size_t *n, char *err, size_t errlen);
/* Is the address in one of the ranges? An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is
 * matched as the IPv4 address it carries. */
bool bg_cidr_match(const struct bg_cidr *list, size_t n, const struct sockaddr *sa);

#endif
