/* POST /bli/v1/queries {national_id, item}: what BLI answers for one person and item. The ID
 * travels in the body, never in the URL, as bligate requires of its own API. */
#include "sbx.h"
#include "bligate/bli_items.h"
#include "bligate/clock.h"
#include "bligate/json.h"
#include "bligate/twid.h"

struct query_body {
  const char *national_id, *item;
};

void sbx_h_query(struct bg_request *r)
{
  static const struct bg_field spec[] = {
    BG_FIELD("national_id", BG_F_NATIONAL_ID, true, struct query_body, national_id),
    BG_FIELD("item", BG_F_ENUM, true, struct query_body, item, .enumv = bg_bli_codes), BG_FIELD_END};
  struct query_body b = {0};
  const char *item = json_string_value(json_object_get(r->json, "item"));
  if (!bg_json_parse(r, r->json, spec, &b)) {
    sbx_count_call(item);
    sbx_count_status(400);
    return;
  }
  /* counted on arrival: a caller that gave up still made the call */
  sbx_count_call(b.item);
  int fault = sbx_fault_for_call();
  if (fault) {
    sbx_count_status(fault);
    bg_reply_json(r, (unsigned)fault,
                  json_pack("{s:s, s:s, s:i}", "code", "sandbox-fault", "title", "Simulated failure", "status", fault));
    return;
  }
  json_t *rec = sbx_record(b.national_id, b.item);
  if (!rec) {
    sbx_count_status(404);
    bg_reply_problem(r, BG_P_SANDBOX_NO_RECORD, NULL);
    return;
  }
  char masked[11], now[BG_TIME_LEN];
  bg_twid_mask(b.national_id, masked);
  sbx_count_status(200);
  bg_reply_json(r, 200, json_pack("{s:s, s:s, s:o, s:s}", "item", b.item, "national_id_masked", masked, "record", rec,
                                  "generated_at", bg_time_fmt(bg_now(), now)));
}
