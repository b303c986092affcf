/* getattr and access: the stat of one path through the caches (ns_stat) and as FUSE wants it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "namespace.h"
#include "object_info.h"
#include "open_files.h"

int ns_object_stat(fs_context *ctx, const char *path, const char *key, int instruction_hint, meta_stat *out)
{
    memset(out, 0, sizeof *out);
    objc_head head;
    memset(&head, 0, sizeof head);
    kv_list_init(&head.metadata);
    aws_error err;
    aws_error_clear(&err);
    if (ctx->objects->ops->head(ctx->objects, key, &head, &err) != 0) {
        objc_head_free(&head);
        return ns_aws_errno(&err, "HEAD", key);
    }
    out->exists = 1;
    out->stored_size = head.size;
    out->last_modified = head.last_modified;
    snprintf(out->etag, sizeof out->etag, "%s", head.etag);
    /* Unchanged since we last worked it out: no envelope, instruction file, tail GET or KMS. */
    if (ctx->meta && meta_cache_object_get(ctx->meta, path, out->etag, out->last_modified, out->stored_size, out)) {
        objc_head_free(&head);
        return 0;
    }
    attrs_from_metadata(&head.metadata, &out->attrs);
    object_info info;
    int rc = object_info_from_head(ctx, key, &head, instruction_hint, &info);
    if (rc == -EIO) {
        /* The envelope is unusable (logged): list the object with its stored size so that it stays
         * removable; reading it gives EIO. */
        out->encrypted = 1;
        out->size = out->stored_size;
    } else if (rc != 0) {
        return rc;
    } else {
        out->encrypted = info.encrypted;
        out->attrs = info.attrs;
        rc = object_info_plain_size(ctx, &info, NULL);
        out->size = rc == 0 ? info.plain_size : info.head.size;   /* corrupt: logged, stored size shown */
        out->size_known = rc == 0;
        object_info_free(&info);
    }
    if (ctx->meta)
        meta_cache_object_put(ctx->meta, path, out);
    return 0;
}

/* A path with no object of its own is a directory when anything exists below it. */
static int dir_stat(fs_context *ctx, const char *path, meta_stat *out)
{
    char *prefix = ns_dir_prefix(ctx, path);
    if (!prefix)
        return -ENOMEM;
    objc_list_page page;
    memset(&page, 0, sizeof page);
    aws_error err;
    aws_error_clear(&err);
    int rc = ctx->objects->ops->list_page(ctx->objects, prefix, "/", NULL, 2, &page, &err);
    if (rc != 0) {
        rc = ns_aws_errno(&err, "LIST", prefix);
        free(prefix);
        return rc;
    }
    rc = page.object_count + page.prefix_count > 0 ? 0 : -ENOENT;
    memset(out, 0, sizeof *out);
    if (rc == 0) {
        out->exists = 1;
        out->is_dir = 1;
        if (page.object_count > 0 && strcmp(page.objects[0].key, prefix) == 0) {
            /* A directory marker: its metadata holds the directory's attributes. */
            objc_head head;
            kv_list_init(&head.metadata);
            aws_error_clear(&err);
            if (ctx->objects->ops->head(ctx->objects, prefix, &head, &err) == 0) {
                attrs_from_metadata(&head.metadata, &out->attrs);
                out->last_modified = head.last_modified;
                objc_head_free(&head);
            }
        }
    }
    objc_list_page_free(&page);
    free(prefix);
    return rc;
}

int ns_stat(fs_context *ctx, const char *path, meta_stat *out)
{
    memset(out, 0, sizeof *out);
    if (strcmp(path, "/") == 0) {
        out->exists = 1;
        out->is_dir = 1;
        return 0;
    }
    uint64_t open_size;
    struct timespec open_mtime;
    if (ctx->open_files && open_files_stat(ctx->open_files, path, &open_size, &open_mtime) == 1) {
        meta_stat cached;
        if (ctx->meta && meta_cache_get(ctx->meta, path, &cached) && cached.exists)
            *out = cached;
        if (ctx->meta)
            meta_cache_note_open(ctx->meta, path);    /* so that readdir lists it before it has an object */
        out->exists = 1;
        out->is_dir = 0;
        out->size = open_size;
        out->attrs.has_mtime = 1;
        out->attrs.mtime = open_mtime;
        /* A file being created has no object yet: its mode and owner are those given at create. */
        open_files_attrs(ctx->open_files, path, &out->attrs);
        ns_overlay_pending(ctx, path, out);
        return 0;
    }
    if (ctx->meta && meta_cache_get(ctx->meta, path, out)) {
        ns_overlay_pending(ctx, path, out);
        return out->exists ? 0 : -ENOENT;
    }
    char *key = ns_path_to_key(ctx, path);
    if (!key)
        return -ENOMEM;
    int rc = ns_object_stat(ctx, path, key, -1, out);
    free(key);
    if (rc == -ENOENT)
        rc = dir_stat(ctx, path, out);
    if (ctx->meta) {
        if (rc == 0)
            meta_cache_put(ctx->meta, path, out);
        else if (rc == -ENOENT)
            meta_cache_put_negative(ctx->meta, path);
    }
    if (rc == 0)
        ns_overlay_pending(ctx, path, out);
    return rc;
}

int ns_getattr(fs_context *ctx, const char *path, struct stat *st)
{
    meta_stat ms;
    int rc = ns_stat(ctx, path, &ms);
    if (rc == 0)
        ns_fill_stat(ctx, &ms, st);
    return rc;
}

