/* Declarative parsing of JSON request bodies into C structs: a spec array names each field,
 * its type and bounds; unknown fields are refused; every bad field is reported at once. */
#ifndef BLIGATE_JSON_H
#define BLIGATE_JSON_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct bg_request;

enum bg_ftype {
  BG_F_STRING,      /* const char * (borrowed from the JSON); NULL when absent */
  BG_F_UUID,        /* const char *, must be a UUID */
  BG_F_NATIONAL_ID, /* const char *, a valid Taiwan ID (bligate/twid.h) */
  BG_F_ENUM,        /* const char *, one of spec.enumv */
  BG_F_BOOL,        /* int: -1 absent, 0, 1 */
  BG_F_INT,         /* long; spec.imin..imax; untouched when absent */
  BG_F_DATE,        /* const char *, YYYY-MM-DD */
  BG_F_STR_ARRAY,   /* json_t * array of strings (borrowed), each checked against enumv if set */
  BG_F_ARRAY,       /* json_t * array (borrowed); elements checked by the handler */
  BG_F_OBJECT,      /* json_t * object (borrowed) */
};

struct bg_field {
  const char *name;
  enum bg_ftype type;
  bool required;
  size_t off;              /* offsetof(struct ..., member) */
  size_t min, max;         /* string length (characters) or array length; 0 max = no cap */
  long imin, imax;
  const char *const *enumv; /* NULL-terminated */
};

/* BG_FIELD("name", BG_F_STRING, true, struct body, name, .min = 1, .max = 50) */
#define BG_FIELD(fname_, ftype_, req_, struct_, member_, ...) \
  { .name = (fname_), .type = (ftype_), .required = (req_), .off = offsetof(struct_, member_), __VA_ARGS__ }
#define BG_FIELD_END { .name = NULL }

/* Field error collector used by parse and by handlers' own checks. */
void bg_field_err(json_t *errors, const char *field, const char *code, const char *detail);

/* Parses obj (may be NULL = empty) into out. On failure replies (unknown-field or
 * validation-failed with errors[]) and returns false. */
bool bg_json_parse(struct bg_request *r, const json_t *obj, const struct bg_field *spec, void *out);
/* Same without replying: appends to errors (prefixing names with prefix, e.g. "subjects[2]."),
 * returns false if anything was wrong. unknown_is_error: report unknown members too. */
bool bg_json_parse_into(const json_t *obj, const struct bg_field *spec, void *out, json_t *errors,
                        const char *prefix);

/* UTF-8 character count (the body is already valid UTF-8: jansson checks). */
size_t bg_utf8_len(const char *s);
/* Compact serialisation for replies and events (sorted keys for canonical forms). */
char *bg_json_dump(const json_t *j);
/* Whether the array holds the string s (a roles list, say); false for anything not an array. */
bool bg_json_array_has(const json_t *array, const char *s);
/* A JSON string holding a UUID, lower-cased in place (one spelling, as bg_req_uuid_param makes
 * a path's): PostgreSQL matches a uuid in any case, so an id compared with the caller's
 * (r->token.sub) or with another in C must be lower case, or "not my own" and "named twice"
 * checks are passed by upper-casing an id. bg_json_parse does it for every BG_F_UUID field;
 * returns the (new) value, or the old one when v is not a UUID string. */
const char *bg_json_uuid_lower(json_t *v);

/* The first string under j (path: where j is, "" for the body) that holds an identity number,
 * outside fields named national_id: true and its path ("subjects[0].name") in field. */
bool bg_json_find_twid(const json_t *j, const char *path, char *field, size_t len);
/* Free text holds no ID number (it would go into events and logs): false after replying 400
 * validation-failed naming the field. */
bool bg_req_no_twid(struct bg_request *r);
#endif
