/* The daemon's log: syslog (facility daemon, ident "s3csefs") once daemonized, stderr in the
 * foreground. One line per event; callers never pass key material, secrets or plaintext. */
#ifndef S3CSEFS_LOG_H
#define S3CSEFS_LOG_H

typedef enum { LOG_LEVEL_ERROR = 0, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG } log_level;

/* Until log_to_syslog() is called, lines go to stderr. */
void log_to_syslog(void);
void log_set_level(log_level max_level);
void log_msg(log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

#endif
