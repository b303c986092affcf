/* The namespace operation table and the read-side caches' lifetime (fs/namespace.h), plus helpers the
 * ns_*.c operations share: context lookup, stat filling, key prefixes, error mapping. */
#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 31
#endif
#include "namespace.h"

#include <errno.h>
#include <fuse.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "key_cache.h"
#include "log.h"
#include "meta_cache.h"

/* FUSE entry points: the calling request's context, then the ns_* operation. */
static int op_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
    (void)fi;
    return ns_getattr(ns_context(), path, st);
}

static int op_access(const char *path, int mask)
{
    (void)mask;   /* permissions are the kernel's (default_permissions); this only checks existence */
    meta_stat ms;
    return ns_stat(ns_context(), path, &ms);
}

typedef struct {
    void *buf;
    fuse_fill_dir_t filler;
} fuse_fill_adapter;

static int fill_adapter(void *arg, const char *name, const struct stat *st, int plus)
{
    fuse_fill_adapter *a = arg;
    return a->filler(a->buf, name, st, 0, plus ? FUSE_FILL_DIR_PLUS : 0);
}

static int op_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t offset, struct fuse_file_info *fi,
                      enum fuse_readdir_flags flags)
{
    (void)offset;
    (void)fi;
    fuse_fill_adapter a = { buf, filler };
    return ns_readdir(ns_context(), path, &a, fill_adapter, (flags & FUSE_READDIR_PLUS) != 0);
}

static int op_mkdir(const char *path, mode_t mode)
{
    struct fuse_context *fc = fuse_get_context();
    return ns_mkdir(fc->private_data, path, mode, fc->uid, fc->gid);
}

static int op_rmdir(const char *path) { return ns_rmdir(ns_context(), path); }
static int op_unlink(const char *path) { return ns_unlink(ns_context(), path); }

static int op_rename(const char *from, const char *to, unsigned int flags)
{
    return ns_rename(ns_context(), from, to, flags);
}

static int op_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
    (void)fi;
    return ns_chmod(ns_context(), path, mode);
}

static int op_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
    (void)fi;
    return ns_chown(ns_context(), path, uid, gid);
}

static int op_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
    (void)fi;
    return ns_utimens(ns_context(), path, tv);
}

static int op_getxattr(const char *path, const char *name, char *value, size_t size)
{
    return ns_getxattr(ns_context(), path, name, value, size);
}

static int op_listxattr(const char *path, char *list, size_t size)
{
    return ns_listxattr(ns_context(), path, list, size);
}

void fs_ops_install_namespace(struct fuse_operations *ops)
{
    ops->getattr = op_getattr;
    ops->access = op_access;
    ops->readdir = op_readdir;
    ops->mkdir = op_mkdir;
    ops->rmdir = op_rmdir;
    ops->unlink = op_unlink;
    ops->rename = op_rename;
    ops->chmod = op_chmod;
    ops->chown = op_chown;
    ops->utimens = op_utimens;
    ops->getxattr = op_getxattr;
    ops->listxattr = op_listxattr;
}

/* The daemon's 100 ms housekeeping: attributes waiting for a file's close, and the heap. The write and
 * read buffers come and go in MiB sizes from one arena kept on the heap (fs/main.c: mmap per buffer
 * would double the CPU per GiB), so after a busy spell the process would stay at its high-water mark;
 * one second after the last buffer went back to the budget, the free heap is returned to the system. */
#define HEAP_TRIM_IDLE_TICKS 10

static void housekeeping_tick(void *arg)
{
    fs_context *ctx = arg;
    ns_apply_pending_attrs(ctx);
    if (memory_budget_idle_tick(&ctx->memory, HEAP_TRIM_IDLE_TICKS)) {
        malloc_trim(0);
        ctx->counters.heap_trims++;
    }
}

int fs_caches_init(fs_context *ctx)
{
    const fs_options *o = &ctx->options;
    ctx->keys = key_cache_new(o->key_cache_ttl_s, o->key_cache_max > 0 ? (size_t)o->key_cache_max : 4096);
    ctx->meta = meta_cache_new(o->stat_ttl_s, 200000);
    if (!ctx->keys || !ctx->meta) {
        fs_caches_destroy(ctx);
        return -ENOMEM;
    }
    int rc = meta_cache_start_ticker(ctx->meta, housekeeping_tick, ctx, 100);
    if (rc != 0) {
        fs_caches_destroy(ctx);
        return rc;
    }
    if (!key_cache_locked(ctx->keys))
        log_warn("could not lock the data-key cache in memory (RLIMIT_MEMLOCK): keys may reach swap");
    return 0;
}

void fs_caches_destroy(fs_context *ctx)
{
    key_cache_free(ctx->keys);
    meta_cache_free(ctx->meta);
    ctx->keys = NULL;
    ctx->meta = NULL;
}

fs_context *ns_context(void)
{
    return fuse_get_context()->private_data;
}

char *ns_dir_prefix(const fs_context *ctx, const char *path)
{
    char *key = ns_path_to_key(ctx, path);
    if (!key)
        return NULL;
    size_t len = strlen(key);
    if (len == 0 || key[len - 1] == '/')
        return key;
    char *prefix = realloc(key, len + 2);
    if (!prefix) {
        free(key);
        return NULL;
    }
    prefix[len] = '/';
    prefix[len + 1] = '\0';
    return prefix;
}

int ns_aws_errno(const aws_error *err, const char *op, const char *key)
{
    if (err->kind == AWS_ERR_NOT_FOUND)
        return -ENOENT;
    char msg[400];
    log_error("%s %s: %s", op, key, aws_error_format(err, msg, sizeof msg));
    switch (err->kind) {
    case AWS_ERR_NO_MEMORY: return -ENOMEM;
    case AWS_ERR_SERVICE: return err->http_status == 403 ? -EACCES : -EIO;
    default: return -EIO;
    }
}

void ns_fill_stat(const fs_context *ctx, const meta_stat *ms, struct stat *st)
{
    const fs_options *o = &ctx->options;
    memset(st, 0, sizeof *st);
    mode_t type = ms->is_dir ? S_IFDIR : S_IFREG;
    mode_t perm = ms->attrs.has_mode ? (ms->attrs.mode & 07777) : ((ms->is_dir ? 0777 : 0666) & ~o->umask);
    st->st_mode = type | perm;
    st->st_nlink = ms->is_dir ? 2 : 1;
    st->st_uid = ms->attrs.has_uid && !o->uid_set ? ms->attrs.uid : o->uid;
    st->st_gid = ms->attrs.has_gid && !o->gid_set ? ms->attrs.gid : o->gid;
    st->st_size = ms->is_dir ? 0 : (off_t)ms->size;
    st->st_blksize = 1 << 20;
    st->st_blocks = (blkcnt_t)((ms->size + 511) / 512);
    if (ms->attrs.has_mtime)
        st->st_mtim = ms->attrs.mtime;
    else
        st->st_mtim.tv_sec = ms->last_modified;
    st->st_ctim = st->st_mtim;
    st->st_atim = st->st_mtim;
}
