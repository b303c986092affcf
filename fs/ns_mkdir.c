/* mkdir, rmdir, unlink. A directory is a "dir/" marker object (empty body, attributes in metadata) or
 * just the common prefix of the objects below it. unlink also removes the file's instruction object and
 * discards a write state still open on the path. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "namespace.h"
#include "object_info.h"
#include "open_files.h"

int ns_mkdir(fs_context *ctx, const char *path, mode_t mode, uid_t uid, gid_t gid)
{
    meta_stat ms;
    int rc = ns_stat(ctx, path, &ms);
    if (rc == 0)
        return -EEXIST;
    if (rc != -ENOENT)
        return rc;
    rc = 0;
    char *marker = ns_dir_prefix(ctx, path);
    if (!marker)
        return -ENOMEM;
    file_attrs attrs;
    memset(&attrs, 0, sizeof attrs);
    attrs.has_mode = attrs.has_uid = attrs.has_gid = attrs.has_mtime = 1;
    attrs.mode = S_IFDIR | (mode & 07777);
    attrs.uid = uid;
    attrs.gid = gid;
    clock_gettime(CLOCK_REALTIME, &attrs.mtime);
    kv_list md;
    kv_list_init(&md);
    aws_error err;
    aws_error_clear(&err);
    if (attrs_to_metadata(&attrs, &md) != 0)
        rc = -ENOMEM;
    else if (ctx->objects->ops->put(ctx->objects, marker, &md, (const uint8_t *)"", 0, &err) != 0)
        rc = ns_aws_errno(&err, "PUT", marker);
    kv_list_free(&md);
    free(marker);
    if (ctx->meta)
        meta_cache_invalidate(ctx->meta, path);
    return rc;
}

int ns_rmdir(fs_context *ctx, const char *path)
{
    if (strcmp(path, "/") == 0)
        return -EBUSY;
    char *prefix = ns_dir_prefix(ctx, path);
    if (!prefix)
        return -ENOMEM;
    objc_list_page page;
    memset(&page, 0, sizeof page);
    aws_error err;
    aws_error_clear(&err);
    int rc = 0;
    if (ctx->objects->ops->list_page(ctx->objects, prefix, "/", NULL, 2, &page, &err) != 0) {
        rc = ns_aws_errno(&err, "LIST", prefix);
    } else {
        int has_marker = 0, has_children = page.prefix_count > 0;
        for (size_t i = 0; i < page.object_count; i++) {
            if (strcmp(page.objects[i].key, prefix) == 0)
                has_marker = 1;
            else
                has_children = 1;
        }
        if (has_children)
            rc = -ENOTEMPTY;
        else if (!has_marker)
            rc = -ENOENT;
        else if (ctx->objects->ops->delete_object(ctx->objects, prefix, &err) != 0)
            rc = ns_aws_errno(&err, "DELETE", prefix);
    }
    objc_list_page_free(&page);
    free(prefix);
    if (ctx->meta)
        meta_cache_invalidate_tree(ctx->meta, path);
    return rc;
}

int ns_unlink(fs_context *ctx, const char *path)
{
    meta_stat ms;
    int rc = ns_stat(ctx, path, &ms);
    if (rc != 0)
        return rc;
    if (ms.is_dir)
        return -EISDIR;
    char *key = ns_path_to_key(ctx, path);
    char *ikey = NULL;
    if (!key || asprintf(&ikey, "%s" INSTRUCTION_SUFFIX, key) < 0) {
        free(key);
        return -ENOMEM;
    }
    /* A file still open for writing (hard_remove: the kernel does not hide it) must not reappear when
     * its last handle closes: its write state is discarded instead of uploaded. */
    if (ctx->open_files)
        open_files_mark_deleted(ctx->open_files, path);
    aws_error err;
    aws_error_clear(&err);
    if (ctx->objects->ops->delete_object(ctx->objects, key, &err) != 0)
        rc = ns_aws_errno(&err, "DELETE", key);
    /* An envelope left in <key>.instruction would make a later plain file of this name unreadable. */
    aws_error_clear(&err);
    if (rc == 0 && ctx->objects->ops->delete_object(ctx->objects, ikey, &err) != 0)
        rc = ns_aws_errno(&err, "DELETE", ikey);
    free(ikey);
    free(key);
    if (ctx->meta)
        meta_cache_invalidate(ctx->meta, path);
    return rc;
}
