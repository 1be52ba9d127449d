/* The BLI service items (Form 1's list): the one catalogue every service reads. */
#ifndef BLIGATE_BLI_ITEMS_H
#define BLIGATE_BLI_ITEMS_H
#include <stdbool.h>
#include <stddef.h>

struct bg_bli_item {
  const char *code;
  const char *name_zh;
  const char *name_en;
};

extern const struct bg_bli_item bg_bli_items[];
extern const size_t bg_bli_nitems;
/* NULL-terminated codes, for enum checks in body specs. */
extern const char *const bg_bli_codes[];
const struct bg_bli_item *bg_bli_item(const char *code);

#endif
