/* Shared text helpers of the AWS layer (see aws_text.h). */
#include "aws_text.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Exactly n ASCII digits at s: their value, else -1. */
static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!aws_ascii_digit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

time_t aws_parse_iso8601(const char *s)
{
    if (!s)
        return -1;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!rest)
        return -1;
    if (*rest == '.') {                       /* fractional seconds: ignored */
        rest++;
        while (aws_ascii_digit((unsigned char)*rest))
            rest++;
    }
    long offset = 0;
    if (*rest == 'Z' || *rest == 'z') {
        rest++;
    } else if (*rest == '+' || *rest == '-') {
        /* Exactly [+-]DD:DD; each character is checked before the next is looked at, so a short
         * offset ("+1:2") never makes us read past the terminating NUL. */
        int hours = digits(rest + 1, 2);
        int minutes = hours >= 0 && rest[3] == ':' ? digits(rest + 4, 2) : -1;
        if (hours < 0 || hours > 23 || minutes < 0 || minutes > 59)
            return -1;
        offset = (*rest == '-' ? -1 : 1) * (hours * 3600L + minutes * 60L);
        rest += 6;
    }
    if (*rest != '\0')
        return -1;
    time_t t = timegm(&tm);
    return t == (time_t)-1 ? -1 : t - offset;
}

char *aws_percent_decode(const char *s, size_t len, int plus_is_space, int strict, size_t *out_len)
{
    if (!s)
        return NULL;
    char *out = malloc(len + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int hi = -1, lo = -1;
        if (s[i] == '%') {
            hi = i + 1 < len ? aws_hex_value((unsigned char)s[i + 1]) : -1;
            lo = i + 2 < len ? aws_hex_value((unsigned char)s[i + 2]) : -1;
        }
        if (s[i] == '%' && hi >= 0 && lo >= 0 && !(strict && hi == 0 && lo == 0)) {
            out[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else if (s[i] == '%' && strict) {
            free(out);
            return NULL;
        } else if (s[i] == '+' && plus_is_space) {
            out[o++] = ' ';
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    if (out_len)
        *out_len = o;
    return out;
}

int aws_copy_checked(char *dst, size_t cap, const char *src)
{
    size_t len = strlen(src);
    if (len >= cap)
        return -1;
    memcpy(dst, src, len + 1);
    return 0;
}

int aws_host_is_loopback(const char *host, size_t len)
{
    if (len == 9 && strncasecmp(host, "localhost", 9) == 0)
        return 1;
    if (len == 5 && strncmp(host, "[::1]", 5) == 0)
        return 1;
    if (len > 4 && strncmp(host, "127.", 4) == 0) {
        for (size_t i = 4; i < len; i++)
            if (!aws_ascii_digit((unsigned char)host[i]) && host[i] != '.')
                return 0;
        return 1;
    }
    return 0;
}
