/* Log sink switch: stderr with a UTC timestamp in the foreground, syslog after daemonizing. The level
 * and the sink are process-wide by nature (syslog itself is), set once at startup. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>
#include <time.h>

static _Atomic int use_syslog;
static _Atomic int max_level = LOG_LEVEL_INFO;

void log_to_syslog(void)
{
    openlog("s3csefs", LOG_PID, LOG_DAEMON);
    use_syslog = 1;
}

void log_set_level(log_level level)
{
    max_level = level;
}

static int syslog_priority(log_level level)
{
    switch (level) {
    case LOG_LEVEL_ERROR: return LOG_ERR;
    case LOG_LEVEL_WARN: return LOG_WARNING;
    case LOG_LEVEL_INFO: return LOG_INFO;
    default: return LOG_DEBUG;
    }
}

void log_msg(log_level level, const char *fmt, ...)
{
    if ((int)level > max_level)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (use_syslog) {
        syslog(syslog_priority(level), "%s", line);
        return;
    }
    static const char *const names[] = { "error", "warn", "info", "debug" };
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);
    fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ s3csefs %s: %s\n", tm.tm_year + 1900,
            tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, now.tv_nsec / 1000000L,
            names[level], line);
}
