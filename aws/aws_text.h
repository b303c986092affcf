/* Small text helpers shared by the AWS layer, each in one place: ISO-8601 timestamps, percent-decoding,
 * bounded copies, loopback host names and locale-independent character classes. No I/O. */
#ifndef S3CSEFS_AWS_TEXT_H
#define S3CSEFS_AWS_TEXT_H

#include <stddef.h>
#include <time.h>

/* "YYYY-MM-DDTHH:MM:SS[.fraction][Z|z|+HH:MM|-HH:MM]" -> time_t (UTC; no zone means UTC).
 * -1 when malformed (the zone must be exactly Z or [+-]DD:DD). */
time_t aws_parse_iso8601(const char *s);

/* Percent-decodes len bytes of s into a malloc'd, NUL-terminated string (*out_len without the NUL,
 * may be NULL). plus_is_space: '+' means ' ' (form/S3 EncodingType=url). strict: a malformed escape or
 * %00 returns NULL; otherwise it stays literal. NULL also on ENOMEM. */
char *aws_percent_decode(const char *s, size_t len, int plus_is_space, int strict, size_t *out_len);

/* Copies src (with its NUL) when it fits in cap: 0, else -1 and dst untouched. */
int aws_copy_checked(char *dst, size_t cap, const char *src);

/* 1 for "localhost", 127.0.0.0/8 in dotted form and "[::1]" (host as in a URL authority, no port). */
int aws_host_is_loopback(const char *host, size_t len);

/* ASCII only, whatever the locale. */
static inline int aws_ascii_digit(int c) { return c >= '0' && c <= '9'; }
static inline int aws_ascii_alnum(int c)
{
    return aws_ascii_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
static inline int aws_hex_value(int c)
{
    return aws_ascii_digit(c) ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

#endif
