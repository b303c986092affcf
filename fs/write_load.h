/* Loads an existing object's plaintext into a spool, so that a file opened for writing without O_TRUNC
 * (append, patch in place) can be changed and re-encrypted with a fresh data key on close. Handles plain
 * objects and CBC-encrypted ones (envelope in metadata or in a <key>.instruction object, resolved by
 * object_info_head); GCM objects are refused (-EIO, logged): s3csefs never writes them, so changing one
 * in place is left to copy-and-replace. Every GET is pinned to the HEAD's ETag: an object replaced
 * while it is read gives -EIO, never a mix of two versions. */
#ifndef S3CSEFS_WRITE_LOAD_H
#define S3CSEFS_WRITE_LOAD_H

#include "fs_context.h"
#include "spool.h"

/* 0 (the spool holds the object's plaintext), -ENOENT (no object: spool left empty), -EIO, -ENOMEM.
 * keep_metadata (may be NULL; initialised by the caller) receives the object's user metadata other than
 * the envelope (x-amz-*), i.e. its stored attributes, to carry over to the new version. */
int write_load_object(fs_context *ctx, const char *key, spool *sp, kv_list *keep_metadata);

#endif
