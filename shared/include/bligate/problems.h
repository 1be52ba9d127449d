/* Problem codes (RFC 9457) from the one registry, problems.def: each code carries its HTTP
 * status and title, so a handler cannot pair a code with the wrong status. */
#ifndef BLIGATE_PROBLEMS_H
#define BLIGATE_PROBLEMS_H
#include <stdbool.h>

enum bg_problem {
#define X(e, code, status, title) BG_P_##e,
#include "bligate/problems.def"
#undef X
  BG_P__COUNT
};

const char *bg_problem_code(enum bg_problem p);
unsigned bg_problem_status(enum bg_problem p);
const char *bg_problem_title(enum bg_problem p);
/* The registry entry of a code another service replied with (to pass its refusal on). */
bool bg_problem_from_code(const char *code, enum bg_problem *out);

#endif
