/* rename: server-side copy (CopyObject; UploadPartCopy beyond 5 GiB inside the client) with the
 * metadata directive COPY, so the CSE envelope is kept byte-for-byte, then delete of the source. An
 * envelope kept in `<key>.instruction` moves with its object. A directory moves object by object.
 * rename never changes bytes: an object stays encrypted or plain as it was written. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "namespace.h"
#include "object_info.h"
#include "open_files.h"

#define RENAME_WAIT_MS 60000


static int copy_then_delete(fs_context *ctx, const char *src, const char *dst)
{
    aws_error err;
    aws_error_clear(&err);
    if (ctx->objects->ops->copy(ctx->objects, src, dst, OBJC_METADATA_COPY, NULL, &err) != 0)
        return ns_aws_errno(&err, "COPY", src);
    aws_error_clear(&err);
    if (ctx->objects->ops->delete_object(ctx->objects, src, &err) != 0)
        return ns_aws_errno(&err, "DELETE", src);
    return 0;
}

static int object_exists(fs_context *ctx, const char *key, int *exists)
{
    objc_head head;
    kv_list_init(&head.metadata);
    aws_error err;
    aws_error_clear(&err);
    if (ctx->objects->ops->head(ctx->objects, key, &head, &err) == 0) {
        objc_head_free(&head);
        *exists = 1;
        return 0;
    }
    *exists = 0;
    return err.kind == AWS_ERR_NOT_FOUND ? 0 : ns_aws_errno(&err, "HEAD", key);
}

static int rename_file(fs_context *ctx, const char *from, const char *to)
{
    char *src = ns_path_to_key(ctx, from), *dst = ns_path_to_key(ctx, to);
    char *isrc = NULL, *idst = NULL;
    int rc = -ENOMEM;
    if (src && dst && asprintf(&isrc, "%s" INSTRUCTION_SUFFIX, src) >= 0 &&
        asprintf(&idst, "%s" INSTRUCTION_SUFFIX, dst) >= 0) {
        int has_instruction = 0;
        rc = object_exists(ctx, isrc, &has_instruction);
        /* The instruction file first: the object must never sit at the new name without its envelope. */
        if (rc == 0 && has_instruction) {
            aws_error err;
            aws_error_clear(&err);
            if (ctx->objects->ops->copy(ctx->objects, isrc, idst, OBJC_METADATA_COPY, NULL, &err) != 0)
                rc = ns_aws_errno(&err, "COPY", isrc);
        }
        if (rc == 0)
            rc = copy_then_delete(ctx, src, dst);
        if (rc == 0 && has_instruction) {
            aws_error err;
            aws_error_clear(&err);
            if (ctx->objects->ops->delete_object(ctx->objects, isrc, &err) != 0)
                rc = ns_aws_errno(&err, "DELETE", isrc);
        } else if (rc == 0) {
            /* The target's own envelope file, if the replaced object had one, would be read with the
             * moved object (a plain file read through it is garbage). */
            object_info_drop_instruction(ctx, dst);
        }
    }
    if (ctx->meta) {
        meta_cache_invalidate(ctx->meta, from);
        meta_cache_invalidate(ctx->meta, to);
        char *ifrom = NULL, *ito = NULL;
        if (asprintf(&ifrom, "%s" INSTRUCTION_SUFFIX, from) >= 0) {
            meta_cache_invalidate(ctx->meta, ifrom);
            free(ifrom);
        }
        if (asprintf(&ito, "%s" INSTRUCTION_SUFFIX, to) >= 0) {
            meta_cache_invalidate(ctx->meta, ito);
            free(ito);
        }
    }
    free(src);
    free(dst);
    free(isrc);
    free(idst);
    return rc;
}

/* Moves every object under from/ (all pages, no delimiter) to to/. */
static int rename_dir(fs_context *ctx, const char *from, const char *to)
{
    char *src = ns_dir_prefix(ctx, from), *dst = ns_dir_prefix(ctx, to);
    if (!src || !dst) {
        free(src);
        free(dst);
        return -ENOMEM;
    }
    size_t slen = strlen(src);
    int rc = 0, more = 1;
    while (rc == 0 && more) {
        objc_list_page page;
        memset(&page, 0, sizeof page);
        aws_error err;
        aws_error_clear(&err);
        /* Always the first page: moved objects are gone from the source listing. */
        if (ctx->objects->ops->list_page(ctx->objects, src, NULL, NULL, 1000, &page, &err) != 0) {
            rc = ns_aws_errno(&err, "LIST", src);
            break;
        }
        for (size_t i = 0; rc == 0 && i < page.object_count; i++) {
            char *target = NULL;
            if (asprintf(&target, "%s%s", dst, page.objects[i].key + slen) < 0) {
                rc = -ENOMEM;
                break;
            }
            rc = copy_then_delete(ctx, page.objects[i].key, target);
            free(target);
        }
        more = page.object_count > 0;
        objc_list_page_free(&page);
    }
    if (ctx->meta) {
        meta_cache_invalidate_tree(ctx->meta, from);
        meta_cache_invalidate_tree(ctx->meta, to);
    }
    free(src);
    free(dst);
    return rc;
}

int ns_rename(fs_context *ctx, const char *from, const char *to, unsigned int flags)
{
    if (flags & RENAME_EXCHANGE)
        return -EINVAL;
    if (strcmp(from, to) == 0)
        return 0;
    meta_stat src, dst;
    int rc = ns_stat(ctx, from, &src);
    if (rc != 0)
        return rc;
    /* rsync renames its temporary file right after close(). Wait while the path is in the open-file
     * table: handles still open, or (open_files.h) the last release still finishing its upload, so the
     * copy sees the complete object. Only handles open for over 60 s give EBUSY. */
    for (int waited = 0; ctx->open_files && open_files_contains(ctx->open_files, from); waited += 20) {
        if (waited >= RENAME_WAIT_MS)
            return -EBUSY;                /* still open for writing: nothing complete to copy */
        usleep(20 * 1000);
    }
    rc = ns_stat(ctx, to, &dst);
    if (rc != 0 && rc != -ENOENT)
        return rc;
    int to_exists = rc == 0;
    if (to_exists && (flags & RENAME_NOREPLACE))
        return -EEXIST;
    if (!src.is_dir) {
        if (to_exists && dst.is_dir)
            return -EISDIR;
        /* Attributes set while the file was open travel with it to the new name. */
        file_attrs pending;
        if (ctx->meta && meta_cache_apply_begin(ctx->meta, from, to) != 0)
            return -ENOMEM;
        int had_pending = ctx->meta && meta_cache_pending_take(ctx->meta, from, &pending);
        rc = rename_file(ctx, from, to);
        if (ctx->meta)
            meta_cache_apply_end(ctx->meta, from, to);
        if (had_pending)
            rc = rc == 0 ? ns_set_attrs(ctx, to, &pending) : (meta_cache_pending_merge(ctx->meta, from, &pending), rc);
        return rc;
    }
    size_t flen = strlen(from);
    if (strncmp(to, from, flen) == 0 && to[flen] == '/')
        return -EINVAL;                   /* into itself */
    if (to_exists) {
        if (!dst.is_dir)
            return -ENOTDIR;
        rc = ns_rmdir(ctx, to);             /* must be empty; removes its marker */
        if (rc != 0 && rc != -ENOENT)
            return rc;
    }
    return rename_dir(ctx, from, to);
}
