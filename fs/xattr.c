/* Read-only extended attributes under user.s3csefs.: how an object is stored (encrypted, key ARN,
 * algorithms, envelope version, sizes), and on the mount root the live counters (user.s3csefs.stats)
 * for the status view. Nothing here can be set or removed. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "namespace.h"
#include "object_info.h"

#define XATTR_PREFIX "user.s3csefs."
#define STATS_CAP 8192

static const char *const object_names[] = {
    "encrypted", "key_arn", "cek_alg", "wrap_alg", "key_version", "plain_size", "stored_size",
};
#define OBJECT_NAME_COUNT (sizeof object_names / sizeof object_names[0])

static const char *wrap_alg_name(cse_wrap_alg alg)
{
    switch (alg) {
    case CSE_WRAP_KMS: return "kms";
    case CSE_WRAP_KMS_CONTEXT: return "kms+context";
    default: return NULL;                 /* absent in the envelope */
    }
}

/* The value of one attribute of an object into out; 0, -ENODATA when it does not apply. */
static int object_value(const object_info *info, const char *name, char *out, size_t cap)
{
    const char *v = NULL;
    if (strcmp(name, "encrypted") == 0) {
        v = info->encrypted ? "yes" : "no";
    } else if (strcmp(name, "plain_size") == 0) {
        snprintf(out, cap, "%" PRIu64, info->plain_size);
        return 0;
    } else if (strcmp(name, "stored_size") == 0) {
        snprintf(out, cap, "%" PRIu64, info->head.size);
        return 0;
    } else if (!info->encrypted) {
        return -ENODATA;
    } else if (strcmp(name, "key_arn") == 0) {
        v = kv_list_get(&info->env.matdesc, "kms_cmk_id");
    } else if (strcmp(name, "cek_alg") == 0) {
        v = cse_cek_alg_name(info->env.cek_alg);
    } else if (strcmp(name, "wrap_alg") == 0) {
        v = wrap_alg_name(info->env.wrap_alg);
    } else if (strcmp(name, "key_version") == 0) {
        v = info->env.key_version == 2 ? "v2" : "v1";
    }
    if (!v)
        return -ENODATA;
    snprintf(out, cap, "%s", v);
    return 0;
}

static int reply(const char *value, size_t len, char *buf, size_t size)
{
    if (size == 0)
        return (int)len;
    if (len > size)
        return -ERANGE;
    memcpy(buf, value, len);
    return (int)len;
}

static int load_object(fs_context *ctx, const char *path, object_info *info)
{
    char *key = ns_path_to_key(ctx, path);
    if (!key)
        return -ENOMEM;
    int rc = object_info_head(ctx, key, -1, info);
    free(key);
    if (rc == 0 && info->encrypted && object_info_plain_size(ctx, info, NULL) != 0)
        info->plain_size = info->head.size;   /* corrupt: logged; still describe the envelope */
    return rc;
}

int ns_getxattr(fs_context *ctx, const char *path, const char *name, char *value, size_t size)
{
    if (strncmp(name, XATTR_PREFIX, strlen(XATTR_PREFIX)) != 0)
        return -ENODATA;
    const char *attr = name + strlen(XATTR_PREFIX);
    if (strcmp(path, "/") == 0) {
        if (strcmp(attr, "stats") != 0)
            return -ENODATA;
        char *text = malloc(STATS_CAP);
        if (!text)
            return -ENOMEM;
        size_t len = fs_counters_format(&ctx->counters, memory_budget_used(&ctx->memory), ctx->memory.limit,
                                        ctx->memory.peak, text, STATS_CAP);
        int rc = reply(text, len, value, size);
        free(text);
        return rc;
    }
    meta_stat ms;
    int rc = ns_stat(ctx, path, &ms);
    if (rc != 0)
        return rc;
    if (ms.is_dir)
        return -ENODATA;
    object_info info;
    rc = load_object(ctx, path, &info);
    if (rc != 0)
        return rc;
    char text[1024];
    rc = object_value(&info, attr, text, sizeof text);
    object_info_free(&info);
    return rc == 0 ? reply(text, strlen(text), value, size) : rc;
}

int ns_listxattr(fs_context *ctx, const char *path, char *list, size_t size)
{
    char names[1024];
    size_t len = 0;
    if (strcmp(path, "/") == 0) {
        len = (size_t)snprintf(names, sizeof names, "%sstats", XATTR_PREFIX) + 1;
        return reply(names, len, list, size);
    }
    meta_stat ms;
    int rc = ns_stat(ctx, path, &ms);
    if (rc != 0)
        return rc;
    if (ms.is_dir)
        return reply("", 0, list, size);
    object_info info;
    rc = load_object(ctx, path, &info);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < OBJECT_NAME_COUNT; i++) {
        char value[1024];
        if (object_value(&info, object_names[i], value, sizeof value) != 0)
            continue;
        len += (size_t)snprintf(names + len, sizeof names - len, "%s%s", XATTR_PREFIX, object_names[i]) + 1;
    }
    object_info_free(&info);
    return reply(names, len, list, size);
}
