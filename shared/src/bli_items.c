/* The BLI item catalogue, as listed on Form 1 of the bureau's rules. */
#include "bligate/bli_items.h"
#include <string.h>

const struct bg_bli_item bg_bli_items[] = {
  {.code = "C0101", .name_zh = "被保險人投保資料", .name_en = "Insured person's enrollment data"},
  {.code = "B0101", .name_zh = "給付資料（摘要）", .name_en = "Benefit payments, summary"},
  {.code = "B0201", .name_zh = "給付資料（明細）", .name_en = "Benefit payments, detail"},
  {.code = "B0301", .name_zh = "失業給付資格", .name_en = "Unemployment benefit eligibility"},
  {.code = "P0301", .name_zh = "勞工退休金提繳異動資料", .name_en = "Labor pension contribution changes"},
  {.code = "N0101", .name_zh = "國民年金給付資料", .name_en = "National pension benefit data"},
  {.code = "T0101", .name_zh = "老年農民福利津貼核付資料", .name_en = "Elderly farmers' welfare allowance payments"},
  {.code = "B0401", .name_zh = "勞保年金給付資料", .name_en = "Labor insurance annuity benefit data"},
  {.code = "P0401", .name_zh = "勞工退休金請領資料", .name_en = "Labor pension claim data"},
};
const size_t bg_bli_nitems = sizeof bg_bli_items / sizeof bg_bli_items[0];

const char *const bg_bli_codes[] = {"C0101", "B0101", "B0201", "B0301", "P0301",
                                    "N0101", "T0101", "B0401", "P0401", NULL};

const struct bg_bli_item *bg_bli_item(const char *code)
{
  for (size_t i = 0; code && i < bg_bli_nitems; i++)
    if (strcmp(bg_bli_items[i].code, code) == 0)
      return &bg_bli_items[i];
  return NULL;
}
