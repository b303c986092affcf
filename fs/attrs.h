/* POSIX attributes kept as S3 user metadata, in the names s3fs-fuse uses so that a bucket can be shared
 * with it: x-amz-meta-mode (decimal st_mode including the type bits), -uid, -gid, -mtime (decimal
 * seconds), plus x-amz-meta-s3csefs-mtime-ns (nanoseconds part) of our own. They are set at upload time
 * when known, else by a metadata-replacing self-copy that keeps every CSE field. */
#ifndef S3CSEFS_ATTRS_H
#define S3CSEFS_ATTRS_H

#include <sys/stat.h>
#include <time.h>
#include "kvlist.h"

#define ATTR_MODE "mode"
#define ATTR_UID "uid"
#define ATTR_GID "gid"
#define ATTR_MTIME "mtime"
#define ATTR_MTIME_NS "s3csefs-mtime-ns"

typedef struct {
    int has_mode, has_uid, has_gid, has_mtime;
    mode_t mode;
    uid_t uid;
    gid_t gid;
    struct timespec mtime;
} file_attrs;

/* Reads the attributes present in user metadata (malformed values are ignored, not fatal). */
void attrs_from_metadata(const kv_list *metadata, file_attrs *out);
/* Sets (replacing) the attributes that are present in `attrs` into metadata. 0 or -1 (ENOMEM). */
int attrs_to_metadata(const file_attrs *attrs, kv_list *metadata);

#endif
