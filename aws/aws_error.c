/* The AWS-layer error value: setting it, naming its kind, and formatting it into one log line. */
#include "aws_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void aws_error_clear(aws_error *err)
{
    if (err)
        memset(err, 0, sizeof(*err));
}

aws_err_kind aws_error_set(aws_error *err, aws_err_kind kind, const char *fmt, ...)
{
    if (!err)
        return kind;
    memset(err, 0, sizeof(*err));
    err->kind = kind;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof(err->message), fmt, ap);
        va_end(ap);
    }
    return kind;
}

aws_err_kind aws_error_set_service(aws_error *err, aws_err_kind kind, int http_status, const char *code,
                                  const char *request_id, const char *fmt, ...)
{
    if (!err)
        return kind;
    memset(err, 0, sizeof(*err));
    err->kind = kind;
    err->http_status = http_status;
    snprintf(err->code, sizeof(err->code), "%s", code ? code : "");
    snprintf(err->request_id, sizeof(err->request_id), "%s", request_id ? request_id : "");
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof(err->message), fmt, ap);
        va_end(ap);
    }
    return kind;
}

const char *aws_err_kind_name(aws_err_kind kind)
{
    switch (kind) {
    case AWS_OK: return "ok";
    case AWS_ERR_ARGUMENT: return "invalid argument";
    case AWS_ERR_NO_MEMORY: return "out of memory";
    case AWS_ERR_NETWORK: return "network error";
    case AWS_ERR_TIMEOUT: return "timeout";
    case AWS_ERR_SERVICE: return "service error";
    case AWS_ERR_NOT_FOUND: return "not found";
    case AWS_ERR_CREDENTIALS: return "credentials error";
    case AWS_ERR_PARSE: return "unparsable response";
    case AWS_ERR_INTEGRITY: return "integrity check failed";
    case AWS_ERR_CONFIG: return "configuration error";
    case AWS_ERR_CRYPTO: return "crypto error";
    case AWS_ERR_CHANGED: return "object changed";
    }
    return "unknown error";
}

/* Appends printf output at *used, truncating at cap (buf stays NUL-terminated). */
static void append_text(char *buf, unsigned cap, size_t *used, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void append_text(char *buf, unsigned cap, size_t *used, const char *fmt, ...)
{
    if (*used + 1 >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *used, cap - *used, fmt, ap);
    va_end(ap);
    if (n > 0)
        *used += (size_t)n < cap - *used ? (size_t)n : cap - *used - 1;
}

/* "<kind>[ HTTP <status>][ <code>][: <message>][ (request <id>)]" */
const char *aws_error_format(const aws_error *err, char *buf, unsigned cap)
{
    if (!buf || cap == 0)
        return "";
    buf[0] = '\0';
    if (!err) {
        snprintf(buf, cap, "no error");
        return buf;
    }
    size_t used = 0;
    append_text(buf, cap, &used, "%s", aws_err_kind_name(err->kind));
    if (err->http_status)
        append_text(buf, cap, &used, " HTTP %d", err->http_status);
    if (err->code[0])
        append_text(buf, cap, &used, " %.*s", (int)sizeof(err->code), err->code);
    if (err->message[0])
        append_text(buf, cap, &used, ": %.*s", (int)sizeof(err->message), err->message);
    if (err->request_id[0])
        append_text(buf, cap, &used, " (request %.*s)", (int)sizeof(err->request_id), err->request_id);
    return buf;
}
