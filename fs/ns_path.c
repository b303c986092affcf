/* Mount path -> object key: options.prefix + the path without its leading slash. */
#include "namespace.h"

#include <stdlib.h>
#include <string.h>

char *ns_path_to_key(const fs_context *ctx, const char *path)
{
    while (*path == '/')
        path++;
    size_t plen = strlen(ctx->options.prefix), len = strlen(path);
    char *key = malloc(plen + len + 1);
    if (!key)
        return NULL;
    memcpy(key, ctx->options.prefix, plen);
    memcpy(key + plen, path, len + 1);
    return key;
}
