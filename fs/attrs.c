/* POSIX attributes <-> S3 user metadata (fs/attrs.h), in s3fs-fuse's names and decimal formats.
 * Malformed values are skipped rather than failing the stat: the object stays readable. */
#include "attrs.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Strict unsigned decimal; 0 on success. */
static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    if (!s || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end != '\0' || v > max)
        return -1;
    *out = v;
    return 0;
}

/* "seconds" or "seconds.fraction" (s3fs-fuse writes both forms across versions). */
static int parse_mtime(const char *s, struct timespec *out)
{
    if (!s)
        return -1;
    const char *dot = strchr(s, '.');
    char secs[32];
    size_t n = dot ? (size_t)(dot - s) : strlen(s);
    if (n == 0 || n >= sizeof secs)
        return -1;
    memcpy(secs, s, n);
    secs[n] = '\0';
    uint64_t sec;
    if (parse_u64(secs, INT64_MAX, &sec) != 0)
        return -1;
    long nsec = 0;
    if (dot) {
        const char *f = dot + 1;
        int digits = 0;
        for (; *f; f++, digits++) {
            if (*f < '0' || *f > '9')
                return -1;
            if (digits < 9)
                nsec = nsec * 10 + (*f - '0');
        }
        if (digits == 0)
            return -1;
        for (; digits < 9; digits++)
            nsec *= 10;
    }
    out->tv_sec = (time_t)sec;
    out->tv_nsec = nsec;
    return 0;
}

void attrs_from_metadata(const kv_list *metadata, file_attrs *out)
{
    memset(out, 0, sizeof *out);
    uint64_t v;
    if (parse_u64(kv_list_get_ci(metadata, ATTR_MODE), 07777777, &v) == 0) {
        out->mode = (mode_t)v;
        out->has_mode = 1;
    }
    if (parse_u64(kv_list_get_ci(metadata, ATTR_UID), UINT32_MAX, &v) == 0) {
        out->uid = (uid_t)v;
        out->has_uid = 1;
    }
    if (parse_u64(kv_list_get_ci(metadata, ATTR_GID), UINT32_MAX, &v) == 0) {
        out->gid = (gid_t)v;
        out->has_gid = 1;
    }
    if (parse_mtime(kv_list_get_ci(metadata, ATTR_MTIME), &out->mtime) == 0) {
        out->has_mtime = 1;
        if (parse_u64(kv_list_get_ci(metadata, ATTR_MTIME_NS), 999999999, &v) == 0)
            out->mtime.tv_nsec = (long)v;
    }
}

int attrs_to_metadata(const file_attrs *attrs, kv_list *metadata)
{
    char buf[32];
    if (attrs->has_mode) {
        snprintf(buf, sizeof buf, "%u", (unsigned)attrs->mode);
        if (kv_list_set(metadata, ATTR_MODE, buf) != 0)
            return -1;
    }
    if (attrs->has_uid) {
        snprintf(buf, sizeof buf, "%u", (unsigned)attrs->uid);
        if (kv_list_set(metadata, ATTR_UID, buf) != 0)
            return -1;
    }
    if (attrs->has_gid) {
        snprintf(buf, sizeof buf, "%u", (unsigned)attrs->gid);
        if (kv_list_set(metadata, ATTR_GID, buf) != 0)
            return -1;
    }
    if (attrs->has_mtime) {
        snprintf(buf, sizeof buf, "%" PRId64, (int64_t)attrs->mtime.tv_sec);
        if (kv_list_set(metadata, ATTR_MTIME, buf) != 0)
            return -1;
        snprintf(buf, sizeof buf, "%ld", (long)attrs->mtime.tv_nsec);
        if (kv_list_set(metadata, ATTR_MTIME_NS, buf) != 0)
            return -1;
    }
    return 0;
}
