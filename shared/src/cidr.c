/* Address ranges (cidr.h). */
#include "bligate/cidr.h"
#include "bligate/util.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool parse_one(const char *s, size_t len, struct bg_cidr *c)
{
  char buf[INET6_ADDRSTRLEN + 8];
  if (len == 0 || len >= sizeof buf)
    return false;
  memcpy(buf, s, len);
  buf[len] = '\0';
  char *slash = strchr(buf, '/');
  if (slash)
    *slash = '\0';
  memset(c, 0, sizeof *c);
  unsigned max;
  if (inet_pton(AF_INET, buf, c->addr) == 1) {
    c->family = AF_INET;
    max = 32;
  } else if (inet_pton(AF_INET6, buf, c->addr) == 1) {
    c->family = AF_INET6;
    max = 128;
  } else {
    return false;
  }
  c->prefix = max;
  if (slash) {
    long p;
    if (!bg_parse_long(slash + 1, 0, (long)max, &p))
      return false;
    c->prefix = (unsigned)p;
  }
  /* no bits beyond the prefix */
  for (unsigned bit = c->prefix; bit < max; bit++)
    if (c->addr[bit / 8] & (0x80u >> (bit % 8)))
      return false;
  return true;
}

bool bg_cidr_parse_list(const char *list, struct bg_cidr *out, size_t max, size_t *n, char *err, size_t errlen)
{
  *n = 0;
  for (const char *p = list ? list : ""; *p;) {
    p += strspn(p, ", ");
    size_t len = strcspn(p, ", ");
    if (!len)
      break;
    if (*n == max || !parse_one(p, len, &out[*n])) {
      snprintf(err, errlen, "%s '%.*s'", *n == max ? "too many entries at" : "not an address or range:", (int)len, p);
      return false;
    }
    (*n)++;
    p += len;
  }
  return true;
}

static bool prefix_equal(const unsigned char *a, const unsigned char *b, unsigned bits)
{
  if (memcmp(a, b, bits / 8) != 0)
    return false;
  unsigned rest = bits % 8;
  if (!rest)
    return true;
  unsigned char mask = (unsigned char)(0xffu << (8 - rest));
  return (a[bits / 8] & mask) == (b[bits / 8] & mask);
}

bool bg_cidr_match(const struct bg_cidr *list, size_t n, const struct sockaddr *sa)
{
  unsigned char addr[16];
  int family;
  if (!sa)
    return false;
  if (sa->sa_family == AF_INET) {
    memcpy(addr, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
    family = AF_INET;
  } else if (sa->sa_family == AF_INET6) {
    const struct in6_addr *a6 = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(a6)) {
      memcpy(addr, a6->s6_addr + 12, 4);
      family = AF_INET;
    } else {
      memcpy(addr, a6->s6_addr, 16);
      family = AF_INET6;
    }
  } else {
    return false;
  }
  for (size_t i = 0; i < n; i++)
    if (list[i].family == family && prefix_equal(list[i].addr, addr, list[i].prefix))
      return true;
  return false;
}
