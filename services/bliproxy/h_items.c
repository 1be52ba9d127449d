/* GET /v1/bli/items: the catalogue of BLI items (Form 1's list), for the screens. */
#include "prx.h"
#include "bligate/bli_items.h"

void prx_h_items(struct bg_request *r)
{
  json_t *items = json_array();
  for (size_t i = 0; i < bg_bli_nitems; i++)
    json_array_append_new(items, json_pack("{s:s, s:s, s:s}", "code", bg_bli_items[i].code, "name_zh",
                                           bg_bli_items[i].name_zh, "name_en", bg_bli_items[i].name_en));
  bg_reply_json(r, 200, json_pack("{s:o}", "items", items));
}
