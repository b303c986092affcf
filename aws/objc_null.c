/* The null object client (objc_null.h): accepts every body and stores nothing. */
#include "objc_null.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    object_client base;
} null_client;

static int null_head(object_client *c, const char *key, objc_head *out, aws_error *err)
{
    (void)c, (void)out;
    aws_error_set(err, AWS_ERR_NOT_FOUND, "null backend keeps no object %s", key);
    return AWS_ERR_NOT_FOUND;
}
static int null_get(object_client *c, const char *key, uint64_t off, size_t len, uint8_t *buf, size_t *got,
                    aws_error *err)
{
    (void)c, (void)off, (void)len, (void)buf, (void)got;
    aws_error_set(err, AWS_ERR_NOT_FOUND, "null backend keeps no object %s", key);
    return AWS_ERR_NOT_FOUND;
}
static int null_put(object_client *c, const char *key, const kv_list *md, const uint8_t *body, size_t len,
                    aws_error *err)
{
    (void)c, (void)key, (void)md, (void)body, (void)len, (void)err;
    return 0;
}
static int null_create(object_client *c, const char *key, const kv_list *md, char **upload_id, aws_error *err)
{
    (void)c, (void)key, (void)md;
    *upload_id = strdup("null-upload");
    if (!*upload_id)
        return aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory");
    return 0;
}
static int null_part(object_client *c, const char *key, const char *id, int n, const uint8_t *body, size_t len,
                     objc_part *part, aws_error *err)
{
    (void)c, (void)key, (void)id, (void)body, (void)len, (void)err;
    part->part_number = n;
    snprintf(part->etag, sizeof part->etag, "\"null-%d\"", n);
    return 0;
}
static int null_complete(object_client *c, const char *key, const char *id, const objc_part *parts, size_t n,
                         aws_error *err)
{
    (void)c, (void)key, (void)id, (void)parts, (void)n, (void)err;
    return 0;
}
static int null_abort(object_client *c, const char *key, const char *id, aws_error *err)
{
    (void)c, (void)key, (void)id, (void)err;
    return 0;
}
static int null_mpu_list(object_client *c, const char *prefix, objc_upload **uploads, size_t *count,
                         aws_error *err)
{
    (void)c, (void)prefix, (void)err;
    *uploads = NULL;
    *count = 0;
    return 0;
}
static int null_list(object_client *c, const char *prefix, const char *delim, const char *token, int max_keys,
                     objc_list_page *out, aws_error *err)
{
    (void)c, (void)prefix, (void)delim, (void)token, (void)max_keys, (void)err;
    memset(out, 0, sizeof *out);
    return 0;
}
static int null_copy(object_client *c, const char *src, const char *dst, objc_metadata_directive d,
                     const kv_list *md, aws_error *err)
{
    (void)c, (void)dst, (void)d, (void)md;
    aws_error_set(err, AWS_ERR_NOT_FOUND, "null backend keeps no object %s", src);
    return AWS_ERR_NOT_FOUND;
}
static int null_delete(object_client *c, const char *key, aws_error *err)
{
    (void)c, (void)key, (void)err;
    return 0;
}
static int null_delete_many(object_client *c, const char *const *keys, size_t n, aws_error *err)
{
    (void)c, (void)keys, (void)n, (void)err;
    return 0;
}
static void null_destroy(object_client *c)
{
    free(c);
}

static int null_get_if_match(object_client *c, const char *key, const char *etag, uint64_t off, size_t len,
                             uint8_t *buf, size_t *got, aws_error *err)
{
    (void)etag;
    return null_get(c, key, off, len, buf, got, err);
}

static int null_get_stream(object_client *c, const char *key, const char *etag, uint64_t off, uint64_t len,
                           objc_stream_fn sink, void *sink_ctx, aws_error *err)
{
    (void)c, (void)etag, (void)off, (void)len, (void)sink, (void)sink_ctx;
    aws_error_set(err, AWS_ERR_NOT_FOUND, "null backend keeps no object %s", key);
    return AWS_ERR_NOT_FOUND;
}

static const objc_ops null_ops = {
    .head = null_head, .get_range = null_get, .put = null_put, .mpu_create = null_create,
    .mpu_upload_part = null_part, .mpu_complete = null_complete, .mpu_abort = null_abort,
    .mpu_list = null_mpu_list, .list_page = null_list, .copy = null_copy, .delete_object = null_delete,
    .delete_objects = null_delete_many, .destroy = null_destroy,
    .get_range_if_match = null_get_if_match, .get_stream = null_get_stream,
};

object_client *objc_new_null(void)
{
    null_client *c = calloc(1, sizeof *c);
    if (c)
        c->base.ops = &null_ops;
    return c ? &c->base : NULL;
}
