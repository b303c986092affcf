/* Namespace side of the FUSE operation table: getattr, readdir, mkdir, rmdir, unlink, rename, chmod,
 * chown, utimens, access, getxattr, listxattr (ns_*.c, xattr.c). The write side installs open/create/
 * read/write/... itself; main.c calls both installers on the same table. Also the constructors of the
 * read-side caches (data keys, stat/listing cache), which main.c calls once fs_context is filled. */
#ifndef S3CSEFS_NAMESPACE_H
#define S3CSEFS_NAMESPACE_H

/* aws_session.h uses the type name before declaring it: declare it first (C11 allows the repeat). */
typedef struct aws_session aws_session;
#include "fs_context.h"

struct fuse_operations;

/* Sets the namespace operations in ops; leaves every other field untouched. */
void fs_ops_install_namespace(struct fuse_operations *ops);

/* Creates ctx->keys and ctx->meta from ctx->options (key_cache_ttl_s, key_cache_max, stat_ttl_s).
 * 0 or -ENOMEM. */
int fs_caches_init(fs_context *ctx);
void fs_caches_destroy(fs_context *ctx);

/* The object key of a mount path ("/a/b" -> options.prefix + "a/b"); malloc'd, NULL on ENOMEM.
 * "/" maps to the prefix itself (possibly ""). */
char *ns_path_to_key(const fs_context *ctx, const char *path);

/* ---- shared by the ns_*.c files and xattr.c (not part of the contract with other engineers) ---- */
#include <sys/stat.h>
#include "meta_cache.h"

/* The fs_context of the calling FUSE request. */
fs_context *ns_context(void);
/* Stat of a mount path through the caches: open files for writing, stat cache, HEAD (+ size), then the
 * directory check. 0 (out->exists is 1), -ENOENT or another -errno. */
int ns_stat(fs_context *ctx, const char *path, meta_stat *out);
/* HEAD + exact plaintext size of one object as a meta_stat; caches the summary. A corrupt encrypted
 * object is still listed (with its stored size) so that it can be removed; reading it gives EIO. */
int ns_object_stat(fs_context *ctx, const char *path, const char *key, int instruction_hint, meta_stat *out);
void ns_fill_stat(const fs_context *ctx, const meta_stat *ms, struct stat *st);
/* The object key prefix of a directory's children ("" or ending in '/'); malloc'd. */
char *ns_dir_prefix(const fs_context *ctx, const char *path);
/* The operations with an explicit context (the FUSE entry points in namespace.c wrap them; unit tests
 * call them directly). Each returns 0 / a byte count, or -errno. */
typedef int (*ns_fill_fn)(void *buf, const char *name, const struct stat *st, int plus);
int ns_getattr(fs_context *ctx, const char *path, struct stat *st);
int ns_readdir(fs_context *ctx, const char *path, void *buf, ns_fill_fn filler, int plus);
int ns_mkdir(fs_context *ctx, const char *path, mode_t mode, uid_t uid, gid_t gid);
int ns_rmdir(fs_context *ctx, const char *path);
int ns_unlink(fs_context *ctx, const char *path);
int ns_rename(fs_context *ctx, const char *from, const char *to, unsigned int flags);
int ns_chmod(fs_context *ctx, const char *path, mode_t mode);
int ns_chown(fs_context *ctx, const char *path, uid_t uid, gid_t gid);
int ns_utimens(fs_context *ctx, const char *path, const struct timespec tv[2]);
int ns_getxattr(fs_context *ctx, const char *path, const char *name, char *value, size_t size);
int ns_listxattr(fs_context *ctx, const char *path, char *list, size_t size);

/* Stores changed attributes (has_* fields) of a path; pending while the file is open for writing. */
int ns_set_attrs(fs_context *ctx, const char *path, const file_attrs *changes);
/* Applies pending attributes of files no longer open for writing (the meta cache's ticker; arg = ctx). */
void ns_apply_pending_attrs(void *arg);
/* Shows pending attribute changes of path in ms. */
void ns_overlay_pending(fs_context *ctx, const char *path, meta_stat *ms);

/* Maps an AWS-layer failure to an errno and logs it with the operation and key. */
int ns_aws_errno(const aws_error *err, const char *op, const char *key);

#endif
