/* Where an S3 request goes: the endpoint and the wire path for a bucket and key, in path style
 * (endpoint/bucket/key) or virtual-hosted style (bucket.endpoint/key). Keys are URI-encoded with '/'
 * kept, so "a b/c+d" travels as "/a%20b/c%2Bd" and "x//y" keeps its empty segment. Pure string code. */
#ifndef S3CSEFS_S3_URL_H
#define S3CSEFS_S3_URL_H

/* endpoint is "scheme://host[:port]". key may be NULL or "" (bucket-level requests: path "/" or
 * "/bucket"). Sets malloc'd *endpoint_out and *path_out; returns 0 or -1 (ENOMEM, malformed endpoint). */
int s3_build_target(const char *endpoint, const char *bucket, const char *key, int path_style,
                    char **endpoint_out, char **path_out);
/* The x-amz-copy-source value for bucket/key: "/bucket/<URI-encoded key>" (malloc'd, NULL on ENOMEM). */
char *s3_copy_source(const char *bucket, const char *key);

#endif
