/* The one context of the daemon, created in main() and passed down to every FUSE operation (through
 * fuse_get_context()->private_data) and every pipeline. Nothing in fs/ keeps state anywhere else. */
#ifndef S3CSEFS_FS_CONTEXT_H
#define S3CSEFS_FS_CONTEXT_H

#include <stdint.h>
#include <sys/types.h>
#include "aws_session.h"
#include "object_client.h"
#include "kms.h"
#include "envelope.h"
#include "memory_budget.h"
#include "counters.h"
#include "fs_options.h"

typedef struct key_cache key_cache;         /* fs/key_cache.h: decrypted data keys by key blob */
typedef struct meta_cache meta_cache;       /* fs/meta_cache.h: stat results, negative entries, listings */
typedef struct open_file_table open_file_table;  /* fs/open_files.h: files open for writing, by path */

typedef struct fs_context {
    fs_options options;              /* parsed mount options (fs/fs_options.h) */
    aws_session *aws;                /* NULL when running on the in-memory client in unit tests */
    object_client *objects;          /* S3 (or memory / faulty) */
    kms_client *kms;
    char key_arn[256];               /* kms_key_id resolved once at mount time */
    memory_budget memory;            /* the one cap on buffers */
    fs_counters counters;
    key_cache *keys;
    meta_cache *meta;
    open_file_table *open_files;
} fs_context;

#endif
