/* JSON-lines logging to stdout. Never log national IDs, tokens, keys or request bodies. */
#ifndef BLIGATE_LOG_H
#define BLIGATE_LOG_H

enum bg_log_level { BG_LOG_DEBUG, BG_LOG_INFO, BG_LOG_WARN, BG_LOG_ERROR };

void bg_log_init(const char *service, enum bg_log_level min);
/* request_id may be NULL. */
void bg_log(enum bg_log_level lvl, const char *request_id, const char *fmt, ...)
  __attribute__((format(printf, 3, 4)));
void bg_log_access(const char *request_id, const char *method, const char *route, unsigned status,
                   double ms, const char *client);

#define bg_info(...) bg_log(BG_LOG_INFO, NULL, __VA_ARGS__)
#define bg_warn(...) bg_log(BG_LOG_WARN, NULL, __VA_ARGS__)
#define bg_error(...) bg_log(BG_LOG_ERROR, NULL, __VA_ARGS__)

#endif
