/* The sandbox's data: plausible records for each BLI item, derived from HMAC-SHA256(seed,
 * national ID | item) so that one person's answers are the same on every call, in every run
 * and on every machine with the same seed, and different people get different answers. About
 * one person in ten has no record at all (decided from the ID alone, so for every item alike);
 * A123456789, the ID of the examples, always has records. */
#include "sbx.h"
#include "bligate/util.h"
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static unsigned char key[32];

void sbx_data_init(const char *seed)
{
  bg_sha256(seed, strlen(seed), key);
}

/* A small deterministic generator seeded from the keyed hash. */
struct rng {
  uint64_t s;
};

static uint64_t next(struct rng *g)
{
  uint64_t z = (g->s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static long pick(struct rng *g, long lo, long hi) { return lo + (long)(next(g) % (uint64_t)(hi - lo + 1)); }

static uint64_t keyed(const char *a, const char *b)
{
  unsigned char mac[32];
  unsigned int len = 0;
  char msg[64];
  snprintf(msg, sizeof msg, "%s|%s", a, b);
  HMAC(EVP_sha256(), key, sizeof key, (const unsigned char *)msg, strlen(msg), mac, &len);
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = v << 8 | mac[i];
  return v;
}

static const char *const employers[] = {
  "高雄港埠物流股份有限公司", "前鎮漁業合作社", "鳳山醫療社團法人", "左營紡織股份有限公司", "楠梓電子股份有限公司",
  "三民區清潔服務有限公司", "苓雅百貨股份有限公司", "小港鋼鐵工業股份有限公司", "岡山食品股份有限公司",
  "旗津海產餐飲有限公司", "大寮營造工程股份有限公司", "路竹科技股份有限公司"};
#define NEMP (sizeof employers / sizeof employers[0])

/* 2026 labor insurance salary grades (NT$), lowest first */
static const long grades[] = {28590, 28800, 30300, 31800, 33300, 34800, 36300, 38200, 40100, 42000, 43900, 45800};
#define NGRADE (sizeof grades / sizeof grades[0])

static void date_str(char out[24], long days_since_1990)
{
  /* civil date from a day count (Howard Hinnant's algorithm), 1990-01-01 = day 0 */
  long z = days_since_1990 + 7305 + 719468; /* 1990-01-01 is 7305 days after 1970-01-01 */
  long era = (z >= 0 ? z : z - 146096) / 146097;
  long doe = z - era * 146097;
  long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  long y = yoe + era * 400, doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
  long d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9;
  snprintf(out, 24, "%04d-%02d-%02d", (int)((y + (m <= 2)) % 10000), (int)(m % 100), (int)(d % 100));
}

/* up to 2026-09 */
#define LAST_DAY 13392

static json_t *enrollment(struct rng *g)
{
  json_t *periods = json_array();
  long day = pick(g, 0, 4000);
  int n = (int)pick(g, 1, 5);
  for (int i = 0; i < n && day < LAST_DAY; i++) {
    long len = pick(g, 90, 3000);
    char from[24], to[24];
    date_str(from, day);
    bool current = i == n - 1 && pick(g, 0, 2) > 0;
    if (!current)
      date_str(to, day + len < LAST_DAY ? day + len : LAST_DAY);
    size_t e = (size_t)pick(g, 0, NEMP - 1);
    long grade = pick(g, 1, NGRADE);
    char tax_id[9];
    snprintf(tax_id, sizeof tax_id, "%08ld", pick(g, 10000000, 99999999));
    json_array_append_new(periods, json_pack("{s:s, s:s, s:s, s:s?, s:i, s:I, s:s}", "employer", employers[e],
                                             "employer_tax_id", tax_id, "insured_from", from, "insured_to",
                                             current ? NULL : to, "salary_grade", (int)grade, "insured_salary",
                                             (json_int_t)grades[grade - 1], "scheme", "勞工保險"));
    day += len + pick(g, 0, 400);
  }
  return json_pack("{s:o}", "periods", periods);
}

static const char *const benefit_types[] = {"傷病給付", "失能給付", "生育給付", "老年給付", "死亡給付", "失業給付"};

static json_t *benefit_details(struct rng *g)
{
  json_t *list = json_array();
  int n = (int)pick(g, 0, 6);
  for (int i = 0; i < n; i++) {
    char paid[24], case_no[16];
    date_str(paid, pick(g, 8000, LAST_DAY));
    snprintf(case_no, sizeof case_no, "L%09ld", pick(g, 100000000, 999999999));
    json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:I}", "case_no", case_no, "type",
                                          benefit_types[pick(g, 0, 5)], "paid_on", paid, "amount",
                                          (json_int_t)(pick(g, 20, 900) * 100)));
  }
  return list;
}

static json_t *benefit_summary(struct rng *g)
{
  json_t *details = benefit_details(g), *by_type = json_object();
  size_t i;
  json_t *d;
  json_array_foreach(details, i, d)
  {
    const char *type = json_string_value(json_object_get(d, "type"));
    json_t *t = json_object_get(by_type, type);
    if (!t) {
      t = json_pack("{s:s, s:i, s:I, s:s}", "type", type, "count", 0, "total_amount", (json_int_t)0, "last_paid_on",
                    "");
      json_object_set_new(by_type, type, t);
    }
    json_object_set_new(t, "count", json_integer(json_integer_value(json_object_get(t, "count")) + 1));
    json_object_set_new(t, "total_amount", json_integer(json_integer_value(json_object_get(t, "total_amount")) +
                                                        json_integer_value(json_object_get(d, "amount"))));
    const char *last = json_string_value(json_object_get(t, "last_paid_on"));
    const char *paid = json_string_value(json_object_get(d, "paid_on"));
    if (strcmp(paid, last) > 0)
      json_object_set_new(t, "last_paid_on", json_string(paid));
  }
  json_t *list = json_array();
  const char *k;
  json_t *v;
  json_object_foreach(by_type, k, v) json_array_append(list, v);
  json_decref(by_type);
  json_decref(details);
  return json_pack("{s:o}", "benefits", list);
}

static json_t *unemployment(struct rng *g)
{
  long months = pick(g, 0, 36);
  bool involuntary = pick(g, 0, 3) > 0;
  bool eligible = months >= 12 && involuntary;
  long wage = grades[pick(g, 0, NGRADE - 1)];
  return json_pack("{s:b, s:s, s:i, s:b, s:s, s:i, s:I}", "eligible", eligible, "reason",
                   eligible ? "符合失業給付請領資格" : months < 12 ? "離職前三年內保險年資未滿一年" : "非自願離職證明未備",
                   "insured_months_last_3_years", (int)months, "involuntary_separation", involuntary, "last_employer",
                   employers[pick(g, 0, NEMP - 1)], "max_months", eligible ? 6 : 0, "monthly_amount",
                   (json_int_t)(eligible ? wage * 60 / 100 : 0));
}

static json_t *pension_changes(struct rng *g)
{
  static const char *const kinds[] = {"提繳", "調整", "停繳"};
  json_t *list = json_array();
  int n = (int)pick(g, 1, 6);
  long day = pick(g, 5500, 9000);
  for (int i = 0; i < n && day < LAST_DAY; i++) {
    char eff[24];
    date_str(eff, day);
    json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:I, s:i}", "employer", employers[pick(g, 0, NEMP - 1)],
                                          "effective_date", eff, "change", kinds[i == 0 ? 0 : pick(g, 1, 2)],
                                          "monthly_wage", (json_int_t)grades[pick(g, 0, NGRADE - 1)], "rate_percent",
                                          6));
    day += pick(g, 60, 1500);
  }
  return list;
}

static json_t *national_pension(struct rng *g)
{
  json_t *list = json_array();
  for (int m = 0; m < 12; m++) {
    char period[8];
    snprintf(period, sizeof period, "%04d-%02d", m < 3 ? 2025 : 2026, m < 3 ? m + 10 : m - 2);
    bool paid = pick(g, 0, 4) > 0;
    json_array_append_new(list, json_pack("{s:s, s:s, s:i}", "period", period, "status", paid ? "已繳" : "未繳",
                                          "amount", 1126));
  }
  return list;
}

static json_t *farmers_allowance(struct rng *g)
{
  bool eligible = pick(g, 0, 3) == 0;
  char since[24];
  date_str(since, pick(g, 9000, LAST_DAY));
  return json_pack("{s:b, s:s?, s:i, s:s}", "eligible", eligible, "since", eligible ? since : NULL, "monthly_amount",
                   eligible ? 8110 : 0, "status", eligible ? "核發中" : "未申請");
}

static json_t *annuities(struct rng *g)
{
  static const char *const kinds[] = {"老年年金", "失能年金", "遺屬年金"};
  json_t *list = json_array();
  if (pick(g, 0, 2) == 0)
    return list;
  const char *kind = kinds[pick(g, 0, 2)];
  long amount = pick(g, 30, 250) * 100;
  for (int m = 1; m <= 9; m++) {
    char month[8];
    snprintf(month, sizeof month, "2026-%02d", m);
    json_array_append_new(list, json_pack("{s:s, s:s, s:I}", "type", kind, "month", month, "amount", (json_int_t)amount));
  }
  return list;
}

static json_t *pension_claims(struct rng *g)
{
  static const char *const kinds[] = {"月退休金", "一次退休金"}, *const states[] = {"審核中", "已核付", "不予給付"};
  json_t *list = json_array();
  int n = (int)pick(g, 0, 2);
  for (int i = 0; i < n; i++) {
    char filed[24], no[16];
    date_str(filed, pick(g, 11000, LAST_DAY));
    snprintf(no, sizeof no, "P%09ld", pick(g, 100000000, 999999999));
    json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:s, s:I}", "claim_no", no, "type", kinds[pick(g, 0, 1)],
                                          "filed_on", filed, "status", states[pick(g, 0, 2)], "amount",
                                          (json_int_t)(pick(g, 100, 20000) * 100)));
  }
  return list;
}

json_t *sbx_record(const char *national_id, const char *item)
{
  if (strcmp(national_id, "A123456789") != 0 && keyed(national_id, "exists") % 10 == 0)
    return NULL;
  struct rng g = {.s = keyed(national_id, item)};
  if (!strcmp(item, "C0101"))
    return enrollment(&g);
  if (!strcmp(item, "B0101"))
    return benefit_summary(&g);
  if (!strcmp(item, "B0201"))
    return json_pack("{s:o}", "payments", benefit_details(&g));
  if (!strcmp(item, "B0301"))
    return unemployment(&g);
  if (!strcmp(item, "P0301"))
    return json_pack("{s:o}", "changes", pension_changes(&g));
  if (!strcmp(item, "N0101"))
    return json_pack("{s:o}", "payments", national_pension(&g));
  if (!strcmp(item, "T0101"))
    return farmers_allowance(&g);
  if (!strcmp(item, "B0401"))
    return json_pack("{s:o}", "payments", annuities(&g));
  if (!strcmp(item, "P0401"))
    return json_pack("{s:o}", "claims", pension_claims(&g));
  return NULL;
}
