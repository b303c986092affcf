/* chmod, chown, utimens: attributes stored as user metadata (fs/attrs.h) by a metadata-replacing
 * self-copy whose new metadata is the current metadata with only the attributes changed, so every CSE
 * field survives. A directory without a marker gets one. For a file open for writing (rsync's fchmod of
 * its temporary file, cp -p before close) the object is not there yet: the change is kept as pending
 * in the meta cache, shown by getattr at once, and applied by the cache's ticker once the upload is
 * done (or carried along by a rename). A change to what stat shows already makes no copy. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "namespace.h"
#include "open_files.h"

/* Applies `changes` onto the attributes an object has (or the defaults it shows). */
static void apply_changes(file_attrs *attrs, const file_attrs *changes, int is_dir)
{
    if (changes->has_mode) {
        mode_t type = attrs->has_mode && (attrs->mode & S_IFMT) ? attrs->mode & S_IFMT : (is_dir ? S_IFDIR : S_IFREG);
        attrs->mode = type | (changes->mode & 07777);
        attrs->has_mode = 1;
    }
    if (changes->has_uid) {
        attrs->uid = changes->uid;
        attrs->has_uid = 1;
    }
    if (changes->has_gid) {
        attrs->gid = changes->gid;
        attrs->has_gid = 1;
    }
    if (changes->has_mtime) {
        attrs->mtime = changes->mtime;
        attrs->has_mtime = 1;
    }
}

/* Whether applying `changes` would alter what stat shows (`shown`: stored values or the defaults). */
static int changes_anything(const file_attrs *shown, const file_attrs *changes)
{
    return (changes->has_mode && (changes->mode & 07777) != (shown->mode & 07777)) ||
           (changes->has_uid && changes->uid != shown->uid) || (changes->has_gid && changes->gid != shown->gid) ||
           (changes->has_mtime && (changes->mtime.tv_sec != shown->mtime.tv_sec ||
                                   changes->mtime.tv_nsec != shown->mtime.tv_nsec));
}

void ns_overlay_pending(fs_context *ctx, const char *path, meta_stat *ms)
{
    file_attrs pending;
    if (ctx->meta && meta_cache_pending_get(ctx->meta, path, &pending))
        apply_changes(&ms->attrs, &pending, ms->is_dir);
}

/* The self-copy (or marker PUT) that stores the changed attributes. */
static int store_attrs(fs_context *ctx, const char *path, const file_attrs *changes)
{
    meta_stat ms;
    int rc = ns_stat(ctx, path, &ms);
    if (rc != 0)
        return rc;
    char *key = ms.is_dir ? ns_dir_prefix(ctx, path) : ns_path_to_key(ctx, path);
    if (!key)
        return -ENOMEM;
    if (key[0] == '\0') {
        free(key);
        return 0;                         /* the bucket root has no object to hold attributes */
    }
    objc_head head;
    kv_list_init(&head.metadata);
    aws_error err;
    aws_error_clear(&err);
    int exists = ctx->objects->ops->head(ctx->objects, key, &head, &err) == 0;
    if (!exists && !(ms.is_dir && err.kind == AWS_ERR_NOT_FOUND)) {
        rc = ns_aws_errno(&err, "HEAD", key);
        free(key);
        return rc;
    }
    file_attrs attrs;
    attrs_from_metadata(&head.metadata, &attrs);
    struct stat st;
    ns_fill_stat(ctx, &ms, &st);
    if (!attrs.has_mode) {
        attrs.mode = st.st_mode;
        attrs.has_mode = 1;
    }
    if (!attrs.has_mtime) {
        attrs.mtime.tv_sec = exists ? head.last_modified : time(NULL);
        attrs.mtime.tv_nsec = 0;
        attrs.has_mtime = 1;
    }
    file_attrs shown = attrs;
    shown.uid = attrs.has_uid ? attrs.uid : st.st_uid;
    shown.gid = attrs.has_gid ? attrs.gid : st.st_gid;
    apply_changes(&attrs, changes, ms.is_dir);
    aws_error_clear(&err);
    if (exists && !changes_anything(&shown, changes))
        rc = 0;                           /* stat shows that already (chmod to the same mode, ...): no copy */
    else if (attrs_to_metadata(&attrs, &head.metadata) != 0)
        rc = -ENOMEM;
    else if (exists)
        rc = ctx->objects->ops->copy(ctx->objects, key, key, OBJC_METADATA_REPLACE, &head.metadata, &err) == 0
                 ? 0 : ns_aws_errno(&err, "COPY", key);
    else
        rc = ctx->objects->ops->put(ctx->objects, key, &head.metadata, (const uint8_t *)"", 0, &err) == 0
                 ? 0 : ns_aws_errno(&err, "PUT", key);
    objc_head_free(&head);
    free(key);
    if (ctx->meta)
        meta_cache_invalidate(ctx->meta, path);
    return rc;
}

int ns_set_attrs(fs_context *ctx, const char *path, const file_attrs *changes)
{
    if (ctx->meta && ctx->open_files && open_files_contains(ctx->open_files, path)) {
        meta_cache_pending_merge(ctx->meta, path, changes);
        meta_cache_invalidate(ctx->meta, path);
        return 0;
    }
    file_attrs all;
    memset(&all, 0, sizeof all);
    if (ctx->meta && meta_cache_apply_begin(ctx->meta, path, NULL) != 0)
        return -ENOMEM;
    int had_pending = ctx->meta && meta_cache_pending_take(ctx->meta, path, &all);
    apply_changes(&all, changes, 0);
    int rc = store_attrs(ctx, path, &all);
    if (rc != 0 && rc != -ENOENT && had_pending)
        meta_cache_pending_merge(ctx->meta, path, &all);     /* retried by the ticker */
    if (ctx->meta)
        meta_cache_apply_end(ctx->meta, path, NULL);
    return rc;
}

void ns_apply_pending_attrs(void *arg)
{
    fs_context *ctx = arg;
    char **paths = NULL;
    size_t n = meta_cache_pending_paths(ctx->meta, &paths);
    for (size_t i = 0; i < n; i++) {
        if (!(ctx->open_files && open_files_contains(ctx->open_files, paths[i]))) {
            file_attrs pending;
            if (meta_cache_apply_begin(ctx->meta, paths[i], NULL) == 0) {
                if (meta_cache_pending_take(ctx->meta, paths[i], &pending)) {
                    int rc = store_attrs(ctx, paths[i], &pending);
                    if (rc != 0 && rc != -ENOENT)
                        log_warn("attributes of %s not stored: %s", paths[i], strerror(-rc));
                }
                meta_cache_apply_end(ctx->meta, paths[i], NULL);
            }
        }
        free(paths[i]);
    }
    free(paths);
}

int ns_chmod(fs_context *ctx, const char *path, mode_t mode)
{
    file_attrs c = { .has_mode = 1, .mode = mode & 07777 };
    return ns_set_attrs(ctx, path, &c);
}

int ns_chown(fs_context *ctx, const char *path, uid_t uid, gid_t gid)
{
    file_attrs c;
    memset(&c, 0, sizeof c);
    if (uid != (uid_t)-1) {
        c.uid = uid;
        c.has_uid = 1;
    }
    if (gid != (gid_t)-1) {
        c.gid = gid;
        c.has_gid = 1;
    }
    if (!c.has_uid && !c.has_gid)
        return 0;
    return ns_set_attrs(ctx, path, &c);
}

int ns_utimens(fs_context *ctx, const char *path, const struct timespec tv[2])
{
    file_attrs c;
    memset(&c, 0, sizeof c);
    c.has_mtime = 1;
    if (!tv || tv[1].tv_nsec == UTIME_NOW)
        clock_gettime(CLOCK_REALTIME, &c.mtime);
    else if (tv[1].tv_nsec == UTIME_OMIT)
        return 0;                         /* atime is not stored */
    else
        c.mtime = tv[1];
    return ns_set_attrs(ctx, path, &c);
}
