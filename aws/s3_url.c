/* S3 request targets: endpoint and path for path-style and virtual-hosted requests (see s3_url.h). */
#include "s3_url.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sigv4.h"

int s3_build_target(const char *endpoint, const char *bucket, const char *key, int path_style,
                    char **endpoint_out, char **path_out)
{
    *endpoint_out = NULL;
    *path_out = NULL;
    const char *sep = strstr(endpoint, "://");
    if (!sep || !bucket || !*bucket)
        return -1;
    size_t end = strlen(endpoint);
    while (end > 0 && endpoint[end - 1] == '/')
        end--;
    char *encoded = aws_uri_encode(key ? key : "", key ? strlen(key) : 0, 0);
    if (!encoded)
        return -1;
    char *ep = NULL, *path = NULL;
    int rc;
    if (path_style) {
        rc = asprintf(&ep, "%.*s", (int)end, endpoint);
        if (rc < 0)
            ep = NULL;
        else if ((rc = asprintf(&path, "/%s%s%s", bucket, *encoded ? "/" : "", encoded)) < 0)
            path = NULL;
    } else {
        size_t scheme_len = (size_t)(sep - endpoint) + 3;
        rc = asprintf(&ep, "%.*s%s.%.*s", (int)scheme_len, endpoint, bucket, (int)(end - scheme_len),
                      endpoint + scheme_len);
        if (rc < 0)
            ep = NULL;
        else if ((rc = asprintf(&path, "/%s", encoded)) < 0)
            path = NULL;
    }
    free(encoded);
    if (!ep || !path) {
        free(ep);
        free(path);
        return -1;
    }
    *endpoint_out = ep;
    *path_out = path;
    return 0;
}

char *s3_copy_source(const char *bucket, const char *key)
{
    char *encoded = aws_uri_encode(key, strlen(key), 0);
    if (!encoded)
        return NULL;
    char *out = NULL;
    if (asprintf(&out, "/%s/%s", bucket, encoded) < 0)
        out = NULL;
    free(encoded);
    return out;
}
