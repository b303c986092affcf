/* Mount options of the daemon: every option settable as -o name=value and in a config file
 * (-o config=/etc/s3csefs.conf, "name = value" lines), each with a default that suits SQL Server backups.
 * Parsing lives in fs_options.c; everything else only reads this struct. */
#ifndef S3CSEFS_FS_OPTIONS_H
#define S3CSEFS_FS_OPTIONS_H

#include <stdint.h>
#include <sys/types.h>
#include "envelope.h"

typedef struct {
    /* What to mount */
    char bucket[256];
    char prefix[1024];              /* "" or "some/prefix/" (always ending in '/') */
    char mountpoint[4096];

    /* Encryption */
    char kms_key_id[512];           /* key id, ARN or alias/...; resolved once to the ARN in fs_context */
    char encrypt[1024];             /* glob list "*.bak:*.trn", or "all", or "none"; default "*.bak" */
    cse_write_profile cse_profile;  /* kms (default) or legacy */

    /* AWS (copied into aws_config) */
    char region[64];
    char endpoint[512];
    char kms_endpoint[512];
    char sts_endpoint[512];
    char profile[128];
    char credentials_file[512];
    char config_file[512];
    int path_style;                 /* -1 auto */
    int allow_http;
    int retries;                    /* attempts per AWS call; 0: the session default (10) */
    int request_timeout_s;          /* bound on all attempts of one call; 0: default (300 s) */
    int connect_timeout_s;          /* 0: default (10 s) */
    int stall_timeout_s;            /* abort a transfer that moves no data this long; 0: default (60 s) */

    /* Write pipeline */
    uint64_t part_size;             /* first part size, default 8 MiB; grows to fit 10,000 parts; raised to
                                     * write_min_part_size() so that 10,000 parts reach 5 TiB */
    int upload_concurrency;         /* parallel UploadPart workers per daemon, default 4 */
    uint64_t max_memory;            /* the one cap on all write and read buffers, default 64 MiB */
    uint64_t reorder_window;        /* bytes of out-of-order writes held in memory, default 16 MiB */
    char spool_dir[4096];           /* default $TMPDIR or /var/tmp */
    int fsync_completes;            /* fsync=complete: fsync by the only writer completes the upload
                                     * (default fsync=parts: waits for the parts sent so far) */

    /* Read pipeline */
    uint64_t prefetch_min;          /* first sequential window, default 1 MiB */
    uint64_t prefetch_max;          /* largest window, default 64 MiB */
    int read_concurrency;           /* accepted for old configurations, ignored: reads stream one GET */

    /* Caches */
    int stat_ttl_s;                 /* stat / negative / listing cache, default 5 s */
    int key_cache_ttl_s;            /* decrypted data keys, default 600 s */
    int key_cache_max;              /* entries, default 4096 */

    /* Ownership and permissions of entries without stored attributes */
    uid_t uid;
    gid_t gid;
    mode_t umask;                   /* default 022 */
    int uid_set, gid_set;

    /* Daemon */
    int foreground;                 /* -f */
    int debug;                      /* -d */
    int allow_other;
    int read_only;
    char fuse_options[1024];        /* FUSE -o options passed through (allow_other, ro, ...), comma list */
    int single_thread;              /* -s */

    /* Testing only */
    char backend[16];               /* "s3" (default); "memory" (objc_new_memory + local KMS), "null"
                                     * (memory store that discards bodies: measures our own cost) */
    char fault[128];                /* "OP:AFTER[:COUNT]" fault rule, e.g. "part:2" (UploadPart fails
                                     * after 2 successful calls); OP in put, part, complete, create */
} fs_options;

/* Defaults for every field. */
void fs_options_defaults(fs_options *opts);

/* Parses the command line: SOURCE (BUCKET, BUCKET:/PREFIX or s3://BUCKET/PREFIX), MOUNTPOINT, -o lists,
 * -f, -d, -s, and config=FILE ("name = value" lines; command-line values win). fstab-only options
 * (_netdev, nofail, noauto, user, users, rw, defaults, auto, x-systemd.*, comment=*) are ignored.
 * Returns 0, 1 when -h/--help/-V was given (usage already printed), or -1 with a message in err. */
int fs_options_parse(int argc, char **argv, fs_options *opts, char *err, size_t err_cap);
/* Applies one name=value (or bare flag) option. 0, or -1 with a message in err. */
int fs_options_set(fs_options *opts, const char *name, const char *value, char *err, size_t err_cap);
/* Parses "8M", "64MiB", "1G", "4096" (binary multiples). 0 or -1. */
int fs_options_parse_size(const char *text, uint64_t *out);
/* Cross-field checks and derived values (part_size rounding, window within the memory cap). */
int fs_options_finalize(fs_options *opts, char *err, size_t err_cap);
/* The object key for a mount path: prefix + path without its leading '/'. malloc'd, NULL on ENOMEM. */
char *fs_options_object_key(const fs_options *opts, const char *path);

#endif
