/* Mount option parsing: the command line (source, mount point, -o lists, -f/-d/-s) and the config
 * file, into fs_options. Our own options are recognised by name; fstab-only ones are dropped; known
 * FUSE options are passed through to libfuse in opts->fuse_options. */
#include "fs_options.h"

#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include "policy.h"
#include "s3_limits.h"
#include "write_stream.h"

#define MIB (1024ULL * 1024ULL)

static int fail(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t cap, const char *fmt, ...)
{
    if (err && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return -1;
}

void fs_options_defaults(fs_options *o)
{
    memset(o, 0, sizeof *o);
    strcpy(o->encrypt, "*.bak");
    o->cse_profile = CSE_PROFILE_KMS;
    o->path_style = -1;
    o->part_size = 8 * MIB;
    o->upload_concurrency = 4;
    o->max_memory = 64 * MIB;
    o->reorder_window = 16 * MIB;
    const char *tmp = getenv("TMPDIR");
    snprintf(o->spool_dir, sizeof o->spool_dir, "%s", tmp && *tmp ? tmp : "/var/tmp");
    o->prefetch_min = 1 * MIB;
    o->prefetch_max = 64 * MIB;
    o->read_concurrency = 4;
    o->stat_ttl_s = 5;
    o->key_cache_ttl_s = 600;
    o->key_cache_max = 4096;
    o->uid = getuid();
    o->gid = getgid();
    o->umask = 022;
    strcpy(o->backend, "s3");
}

int fs_options_parse_size(const char *text, uint64_t *out)
{
    if (!text || !isdigit((unsigned char)text[0]))
        return -1;
    errno = 0;
    char *end;
    unsigned long long n = strtoull(text, &end, 10);
    if (errno)
        return -1;
    uint64_t mult = 1;
    if (*end) {
        switch (toupper((unsigned char)*end)) {
        case 'K': mult = 1024ULL; break;
        case 'M': mult = MIB; break;
        case 'G': mult = 1024ULL * MIB; break;
        case 'T': mult = 1024ULL * 1024ULL * MIB; break;
        default: return -1;
        }
        end++;
        if (strcasecmp(end, "") != 0 && strcasecmp(end, "b") != 0 && strcasecmp(end, "ib") != 0)
            return -1;
    }
    if (n > UINT64_MAX / mult)
        return -1;
    *out = n * mult;
    return 0;
}

static int parse_int(const char *text, long min, long max, long *out)
{
    if (!text || !*text)
        return -1;
    errno = 0;
    char *end;
    long v = strtol(text, &end, 10);
    if (errno || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static int copy_str(char *dst, size_t cap, const char *value, const char *name, char *err, size_t err_cap)
{
    if (!value)
        return fail(err, err_cap, "option %s needs a value", name);
    if (strlen(value) >= cap)
        return fail(err, err_cap, "option %s: value too long", name);
    strcpy(dst, value);
    return 0;
}

static int append_fuse_option(fs_options *o, const char *opt, char *err, size_t err_cap)
{
    size_t used = strlen(o->fuse_options);
    size_t need = strlen(opt) + (used ? 1 : 0);
    if (used + need >= sizeof o->fuse_options)
        return fail(err, err_cap, "too many FUSE options");
    if (used)
        strcat(o->fuse_options, ",");
    strcat(o->fuse_options, opt);
    return 0;
}

static int is_fstab_only(const char *name)
{
    static const char *const ignored[] = { "_netdev", "nofail", "noauto", "auto", "user", "users", "nouser",
                                           "rw", "defaults", "exec", "noexec", "suid", "nosuid", "dev",
                                           "nodev", "async", "atime", "noatime", "relatime", "comment",
                                           "owner", "group", "nobootwait", "bg", "fg" };
    if (strncmp(name, "x-", 2) == 0)
        return 1;
    for (size_t i = 0; i < sizeof ignored / sizeof ignored[0]; i++)
        if (strcmp(name, ignored[i]) == 0)
            return 1;
    return 0;
}

static int set_size(uint64_t *field, const char *name, const char *value, char *err, size_t err_cap)
{
    if (fs_options_parse_size(value, field) != 0)
        return fail(err, err_cap, "option %s: bad size '%s' (use e.g. 8M, 64MiB, 1G)", name,
                    value ? value : "");
    return 0;
}

static int set_bool_flag(int *field, const char *value)
{
    if (!value || strcmp(value, "1") == 0 || strcasecmp(value, "true") == 0 || strcasecmp(value, "yes") == 0) {
        *field = 1;
        return 0;
    }
    if (strcmp(value, "0") == 0 || strcasecmp(value, "false") == 0 || strcasecmp(value, "no") == 0) {
        *field = 0;
        return 0;
    }
    return -1;
}

int fs_options_set(fs_options *o, const char *name, const char *value, char *err, size_t err_cap)
{
    long n;
#define STR(field) copy_str(o->field, sizeof o->field, value, name, err, err_cap)
    if (strcmp(name, "kms_key_id") == 0) return STR(kms_key_id);
    if (strcmp(name, "encrypt") == 0) {
        if (policy_validate(value) != 0)
            return fail(err, err_cap, "option encrypt: '%s' is not a glob list (*.bak:*.trn), all or none",
                        value ? value : "");
        return STR(encrypt);
    }
    if (strcmp(name, "cse_profile") == 0) {
        if (value && strcmp(value, "kms") == 0) o->cse_profile = CSE_PROFILE_KMS;
        else if (value && strcmp(value, "legacy") == 0) o->cse_profile = CSE_PROFILE_LEGACY;
        else return fail(err, err_cap, "option cse_profile: use kms or legacy");
        return 0;
    }
    if (strcmp(name, "region") == 0) return STR(region);
    if (strcmp(name, "endpoint") == 0) return STR(endpoint);
    if (strcmp(name, "kms_endpoint") == 0) return STR(kms_endpoint);
    if (strcmp(name, "sts_endpoint") == 0) return STR(sts_endpoint);
    if (strcmp(name, "profile") == 0) return STR(profile);
    if (strcmp(name, "credentials_file") == 0) return STR(credentials_file);
    if (strcmp(name, "aws_config_file") == 0) return STR(config_file);
    if (strcmp(name, "spool_dir") == 0) return STR(spool_dir);
    if (strcmp(name, "backend") == 0) {
        if (!value || (strcmp(value, "s3") && strcmp(value, "memory") && strcmp(value, "null")))
            return fail(err, err_cap, "option backend: use s3, memory or null");
        return STR(backend);
    }
    if (strcmp(name, "fault") == 0) return STR(fault);
    if (strcmp(name, "fsync") == 0) {
        if (value && strcmp(value, "parts") == 0) o->fsync_completes = 0;
        else if (value && strcmp(value, "complete") == 0) o->fsync_completes = 1;
        else return fail(err, err_cap, "option fsync: use parts or complete");
        return 0;
    }
    if (strcmp(name, "path_style") == 0 || strcmp(name, "use_path_request_style") == 0) {
        if (set_bool_flag(&o->path_style, value) != 0)
            return fail(err, err_cap, "option %s: use 0 or 1", name);
        return 0;
    }
    if (strcmp(name, "allow_http") == 0) {
        if (set_bool_flag(&o->allow_http, value) != 0)
            return fail(err, err_cap, "option allow_http: use 0 or 1");
        return 0;
    }
    if (strcmp(name, "part_size") == 0) return set_size(&o->part_size, name, value, err, err_cap);
    if (strcmp(name, "max_memory") == 0) return set_size(&o->max_memory, name, value, err, err_cap);
    if (strcmp(name, "reorder_window") == 0) return set_size(&o->reorder_window, name, value, err, err_cap);
    if (strcmp(name, "prefetch_min") == 0) return set_size(&o->prefetch_min, name, value, err, err_cap);
    if (strcmp(name, "prefetch_max") == 0) return set_size(&o->prefetch_max, name, value, err, err_cap);
#define INT(field, lo, hi)                                                                          \
    do {                                                                                            \
        if (parse_int(value, lo, hi, &n) != 0)                                                      \
            return fail(err, err_cap, "option %s: expected a number from %ld to %ld", name,         \
                        (long)(lo), (long)(hi));                                                    \
        o->field = (int)n;                                                                          \
        return 0;                                                                                   \
    } while (0)
    if (strcmp(name, "upload_concurrency") == 0) INT(upload_concurrency, 1, 64);
    if (strcmp(name, "retries") == 0) INT(retries, 1, 100);
    if (strcmp(name, "request_timeout") == 0) INT(request_timeout_s, 1, 86400);
    if (strcmp(name, "connect_timeout") == 0) INT(connect_timeout_s, 1, 3600);
    if (strcmp(name, "stall_timeout") == 0) INT(stall_timeout_s, 1, 3600);
    if (strcmp(name, "read_concurrency") == 0) INT(read_concurrency, 1, 64);
    if (strcmp(name, "stat_ttl") == 0 || strcmp(name, "stat_ttl_s") == 0) INT(stat_ttl_s, 0, 86400);
    if (strcmp(name, "key_cache_ttl") == 0 || strcmp(name, "key_cache_ttl_s") == 0) INT(key_cache_ttl_s, 0, 86400);
    if (strcmp(name, "key_cache_max") == 0) INT(key_cache_max, 1, 1000000);
    if (strcmp(name, "uid") == 0) {
        if (parse_int(value, 0, 0x7fffffff, &n) != 0) {
            struct passwd *pw = value ? getpwnam(value) : NULL;
            if (!pw)
                return fail(err, err_cap, "option uid: unknown user '%s'", value ? value : "");
            n = pw->pw_uid;
        }
        o->uid = (uid_t)n;
        o->uid_set = 1;
        return 0;
    }
    if (strcmp(name, "gid") == 0) {
        if (parse_int(value, 0, 0x7fffffff, &n) != 0) {
            struct group *gr = value ? getgrnam(value) : NULL;
            if (!gr)
                return fail(err, err_cap, "option gid: unknown group '%s'", value ? value : "");
            n = gr->gr_gid;
        }
        o->gid = (gid_t)n;
        o->gid_set = 1;
        return 0;
    }
    if (strcmp(name, "umask") == 0) {
        char *end;
        if (!value || !*value)
            return fail(err, err_cap, "option umask needs an octal value");
        unsigned long m = strtoul(value, &end, 8);
        if (*end || m > 0777)
            return fail(err, err_cap, "option umask: '%s' is not an octal mask", value);
        o->umask = (mode_t)m;
        return 0;
    }
    /* FUSE options we act on as well as pass through. */
    if (strcmp(name, "allow_other") == 0) {
        o->allow_other = 1;
        return append_fuse_option(o, "allow_other", err, err_cap);
    }
    if (strcmp(name, "ro") == 0) {
        o->read_only = 1;
        return append_fuse_option(o, "ro", err, err_cap);
    }
    if (strcmp(name, "debug") == 0) {
        o->debug = 1;
        o->foreground = 1;
        return 0;
    }
    if (strcmp(name, "foreground") == 0) {
        o->foreground = 1;
        return 0;
    }
    if (is_fstab_only(name))
        return 0;
    static const char *const fuse_passthrough[] = { "allow_root", "default_permissions", "auto_unmount",
                                                    "fsname", "subtype", "max_read", "blkdev",
                                                    "kernel_cache", "auto_cache", "noforget" };
    for (size_t i = 0; i < sizeof fuse_passthrough / sizeof fuse_passthrough[0]; i++) {
        if (strcmp(name, fuse_passthrough[i]) == 0) {
            char opt[600];
            snprintf(opt, sizeof opt, value ? "%s=%s" : "%s", name, value);
            return append_fuse_option(o, opt, err, err_cap);
        }
    }
    return fail(err, err_cap, "unknown option '%s'", name);
#undef STR
#undef INT
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return s;
}

static int load_config_file(fs_options *o, const char *path, char *err, size_t err_cap)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return fail(err, err_cap, "config file %s: %s", path, strerror(errno));
    char line[2048];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof line, f)) {
        lineno++;
        char *s = trim(line);
        if (*s == '\0' || *s == '#' || *s == ';')
            continue;
        char *eq = strchr(s, '=');
        char *value = NULL;
        if (eq) {
            *eq = '\0';
            value = trim(eq + 1);
        }
        char *name = trim(s);
        char msg[512];
        if (strcmp(name, "config") == 0 || fs_options_set(o, name, value, msg, sizeof msg) != 0) {
            if (strcmp(name, "config") == 0)
                snprintf(msg, sizeof msg, "config files do not nest");
            rc = fail(err, err_cap, "%s:%d: %s", path, lineno, msg);
        }
    }
    fclose(f);
    return rc;
}

/* Splits a -o list on commas and applies each option (or, in the config pass, only config=). */
static int apply_option_list(fs_options *o, const char *list, int config_pass, char *err, size_t err_cap)
{
    char *copy = strdup(list);
    if (!copy)
        return fail(err, err_cap, "out of memory");
    int rc = 0;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok && rc == 0; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        char *value = NULL;
        if (eq) {
            *eq = '\0';
            value = eq + 1;
        }
        int is_config = strcmp(tok, "config") == 0;
        if (config_pass != is_config)
            continue;
        if (is_config) {
            if (!value || !*value)
                rc = fail(err, err_cap, "option config needs a file name");
            else
                rc = load_config_file(o, value, err, err_cap);
        } else {
            rc = fs_options_set(o, tok, value, err, err_cap);
        }
    }
    free(copy);
    return rc;
}

static int parse_source(fs_options *o, const char *source, char *err, size_t err_cap)
{
    const char *bucket = source, *prefix = "";
    size_t bucket_len;
    if (strncmp(source, "s3://", 5) == 0) {
        bucket = source + 5;
        const char *slash = strchr(bucket, '/');
        bucket_len = slash ? (size_t)(slash - bucket) : strlen(bucket);
        prefix = slash ? slash + 1 : "";
    } else {
        const char *colon = strchr(source, ':');
        bucket_len = colon ? (size_t)(colon - source) : strlen(source);
        prefix = colon ? colon + 1 : "";
    }
    if (bucket_len == 0 || bucket_len >= sizeof o->bucket)
        return fail(err, err_cap, "bad source '%s': expected BUCKET, BUCKET:/PREFIX or s3://BUCKET/PREFIX",
                    source);
    memcpy(o->bucket, bucket, bucket_len);
    o->bucket[bucket_len] = '\0';
    if (strchr(o->bucket, '/'))
        return fail(err, err_cap, "bad bucket name '%s'", o->bucket);
    while (*prefix == '/')
        prefix++;
    size_t plen = strlen(prefix);
    while (plen > 0 && prefix[plen - 1] == '/')
        plen--;
    if (plen + 2 > sizeof o->prefix)
        return fail(err, err_cap, "prefix too long");
    memcpy(o->prefix, prefix, plen);
    o->prefix[plen] = '\0';
    if (plen)
        strcat(o->prefix, "/");
    return 0;
}

static void print_usage(const char *argv0)
{
    printf("usage: %s BUCKET[:/PREFIX] MOUNTPOINT [-f] [-d] [-s] [-o option[,option...]]\n"
           "       (also s3://BUCKET/PREFIX)\n"
           "options: kms_key_id= encrypt= cse_profile= region= endpoint= kms_endpoint= profile=\n"
           "         part_size= upload_concurrency= max_memory= reorder_window= spool_dir= uid= gid=\n"
           "         umask= config=FILE allow_other ro ... (see s3csefs(1))\n",
           argv0);
}

int fs_options_parse(int argc, char **argv, fs_options *o, char *err, size_t err_cap)
{
    const char *positional[2] = { NULL, NULL };
    int npos = 0;
    /* Two passes over the -o lists: config files first, so the command line overrides them. */
    for (int pass = 1; pass >= 0; pass--) {
        for (int i = 1; i < argc; i++) {
            const char *a = argv[i];
            const char *list = NULL;
            if (strcmp(a, "-o") == 0) {
                if (i + 1 >= argc)
                    return fail(err, err_cap, "-o needs an option list");
                list = argv[++i];
            } else if (strncmp(a, "-o", 2) == 0) {
                list = a + 2;
            } else if (pass == 1) {
                continue;
            } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
                print_usage(argv[0]);
                return 1;
            } else if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
                printf("s3csefs 0.1.0\n");
                return 1;
            } else if (strcmp(a, "-f") == 0) {
                o->foreground = 1;
            } else if (strcmp(a, "-d") == 0) {
                o->debug = 1;
                o->foreground = 1;
            } else if (strcmp(a, "-s") == 0) {
                o->single_thread = 1;
            } else if (a[0] == '-' && a[1]) {
                return fail(err, err_cap, "unknown argument '%s'", a);
            } else {
                if (npos >= 2)
                    return fail(err, err_cap, "unexpected argument '%s'", a);
                positional[npos++] = a;
            }
            if (list && apply_option_list(o, list, pass, err, err_cap) != 0)
                return -1;
        }
    }
    if (npos < 2)
        return fail(err, err_cap, "need a source (BUCKET[:/PREFIX]) and a mount point; see -h");
    if (parse_source(o, positional[0], err, err_cap) != 0)
        return -1;
    if (strlen(positional[1]) >= sizeof o->mountpoint)
        return fail(err, err_cap, "mount point path too long");
    strcpy(o->mountpoint, positional[1]);
    return fs_options_finalize(o, err, err_cap);
}

int fs_options_finalize(fs_options *o, char *err, size_t err_cap)
{
    if (o->part_size < S3_MIN_PART_SIZE || o->part_size > S3_MAX_PART_SIZE)
        return fail(err, err_cap, "part_size must be between 5 MiB and 5 GiB");
    /* Every part but the last must hold whole cipher blocks. */
    o->part_size = (o->part_size + 15) & ~15ULL;
    /* With S3's bare 5 MiB minimum the doubling parts stop short of 5 TiB: raise to the size that
     * reaches it (about 5.13 MiB), so that a backup up to S3's object limit always fits. */
    uint64_t min_part = write_min_part_size();
    if (o->part_size < min_part)
        o->part_size = min_part;
    if (o->max_memory < 2 * o->part_size)
        return fail(err, err_cap, "max_memory (%llu) must be at least twice part_size (%llu)",
                    (unsigned long long)o->max_memory, (unsigned long long)o->part_size);
    if (o->reorder_window > o->max_memory / 2)
        o->reorder_window = o->max_memory / 2;
    if (o->prefetch_min > o->prefetch_max)
        o->prefetch_min = o->prefetch_max;
    if (o->spool_dir[0] == '\0')
        strcpy(o->spool_dir, "/var/tmp");
    return 0;
}

char *fs_options_object_key(const fs_options *o, const char *path)
{
    while (*path == '/')
        path++;
    size_t plen = strlen(o->prefix), len = strlen(path);
    char *key = malloc(plen + len + 1);
    if (!key)
        return NULL;
    memcpy(key, o->prefix, plen);
    memcpy(key + plen, path, len + 1);
    return key;
}
