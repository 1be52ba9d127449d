/* Lookups into the problem registry (problems.def). */
#include "bligate/problems.h"
#include <string.h>

static const struct {
  const char *code;
  unsigned status;
  const char *title;
} registry[] = {
#define X(e, code, status, title) [BG_P_##e] = {code, status, title},
#include "bligate/problems.def"
#undef X
};

const char *bg_problem_code(enum bg_problem p) { return p < BG_P__COUNT ? registry[p].code : "internal-error"; }
unsigned bg_problem_status(enum bg_problem p) { return p < BG_P__COUNT ? registry[p].status : 500; }
const char *bg_problem_title(enum bg_problem p) { return p < BG_P__COUNT ? registry[p].title : "Internal error"; }

bool bg_problem_from_code(const char *code, enum bg_problem *out)
{
  for (int p = 0; code && p < BG_P__COUNT; p++)
    if (!strcmp(registry[p].code, code)) {
      *out = (enum bg_problem)p;
      return true;
    }
  return false;
}
