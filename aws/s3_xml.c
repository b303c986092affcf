/* S3 XML documents: response parsing and request body building (see s3_xml.h). */
#include "s3_xml.h"
#include "aws_text.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void copy_text(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

static int error_from_node(const xml_node *e, aws_error *err)
{
    aws_error_clear(err);
    if (err) {
        err->kind = AWS_ERR_SERVICE;
        copy_text(err->code, sizeof err->code, xml_child_text(e, "Code"));
        copy_text(err->message, sizeof err->message, xml_child_text(e, "Message"));
        copy_text(err->request_id, sizeof err->request_id, xml_child_text(e, "RequestId"));
        if (!err->code[0])
            copy_text(err->code, sizeof err->code, "InternalError");
    }
    return AWS_ERR_SERVICE;
}

/* Parses and checks the root: <Error> becomes a service error, any other unexpected root a parse error. */
static xml_node *parse_root(const char *body, size_t len, const char *expected, int *rc, aws_error *err)
{
    xml_node *root = xml_parse(body, len, err);
    if (!root) {
        *rc = err ? (int)err->kind : AWS_ERR_PARSE;
        return NULL;
    }
    if (strcmp(root->name, "Error") == 0) {
        *rc = error_from_node(root, err);
    } else if (strcmp(root->name, expected) != 0) {
        *rc = aws_error_set(err, AWS_ERR_PARSE, "S3 answered <%.40s> where <%s> was expected", root->name, expected);
    } else {
        *rc = 0;
        return root;
    }
    xml_free(root);
    return NULL;
}

int s3_xml_check_result(const char *body, size_t len, const char *expected_root, aws_error *err)
{
    int rc;
    xml_node *root = parse_root(body, len, expected_root, &rc, err);
    xml_free(root);
    return rc;
}

char *s3_url_decode(const char *s)
{
    /* strict: %00 would cut the key short, and a malformed escape is a malformed answer */
    return s ? aws_percent_decode(s, strlen(s), 1, 1, NULL) : NULL;
}

/* Text of a child, URL-decoded when the listing is url-encoded; NULL on a missing child or ENOMEM. */
static char *child_string(const xml_node *n, const char *name, int url_encoded, int *bad)
{
    const char *t = xml_child_text(n, name);
    if (!t) {
        *bad = 1;
        return NULL;
    }
    char *s = url_encoded ? s3_url_decode(t) : strdup(t);
    if (!s)
        *bad = 1;
    return s;
}

int s3_parse_u64(const char *s, uint64_t *out)
{
    if (!s || !isdigit((unsigned char)*s))
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno == ERANGE)
        return -1;
    *out = v;
    return 0;
}

time_t s3_parse_iso8601(const char *s)
{
    return aws_parse_iso8601(s);
}

time_t s3_parse_http_date(const char *s)
{
    struct tm tm = {0};
    if (!s)
        return -1;
    const char *rest = strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!rest || *rest)
        return -1;
    return timegm(&tm);
}

static int is_true(const char *s) { return s && strcmp(s, "true") == 0; }

int s3_xml_parse_list_objects(const char *body, size_t len, objc_list_page *out, aws_error *err)
{
    memset(out, 0, sizeof *out);
    int rc;
    xml_node *root = parse_root(body, len, "ListBucketResult", &rc, err);
    if (!root)
        return rc;
    const char *enc = xml_child_text(root, "EncodingType");
    int url = enc && strcmp(enc, "url") == 0;
    size_t objects = 0, prefixes = 0;
    for (const xml_node *c = xml_child(root, "Contents"); c; c = xml_next_same(c))
        objects++;
    for (const xml_node *c = xml_child(root, "CommonPrefixes"); c; c = xml_next_same(c))
        prefixes++;
    int bad = 0;
    out->objects = calloc(objects ? objects : 1, sizeof *out->objects);
    out->prefixes = calloc(prefixes ? prefixes : 1, sizeof *out->prefixes);
    if (!out->objects || !out->prefixes) {
        rc = aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory parsing a listing");
        goto fail;
    }
    for (const xml_node *c = xml_child(root, "Contents"); c; c = xml_next_same(c)) {
        objc_entry *e = &out->objects[out->object_count++];
        e->key = child_string(c, "Key", url, &bad);
        if (bad || s3_parse_u64(xml_child_text(c, "Size"), &e->size) != 0) {
            bad = 1;
            break;
        }
        copy_text(e->etag, sizeof e->etag, xml_child_text(c, "ETag"));
        e->last_modified = s3_parse_iso8601(xml_child_text(c, "LastModified"));
        if (e->last_modified == (time_t)-1)
            e->last_modified = 0;
    }
    for (const xml_node *c = xml_child(root, "CommonPrefixes"); c && !bad; c = xml_next_same(c)) {
        out->prefixes[out->prefix_count] = child_string(c, "Prefix", url, &bad);
        if (!bad)
            out->prefix_count++;
    }
    if (!bad && is_true(xml_child_text(root, "IsTruncated"))) {
        const char *tok = xml_child_text(root, "NextContinuationToken");
        if (!tok || !*tok || !(out->next_token = strdup(tok)))
            bad = 1;
    }
    if (bad) {
        rc = aws_error_set(err, AWS_ERR_PARSE, "ListObjectsV2 answer has a malformed entry");
        goto fail;
    }
    xml_free(root);
    return 0;
fail:
    xml_free(root);
    objc_list_page_free(out);
    return rc;
}

int s3_xml_parse_list_uploads(const char *body, size_t len, objc_upload **uploads, size_t *count,
                              char **next_key_marker, char **next_upload_id_marker, aws_error *err)
{
    *next_key_marker = NULL;
    *next_upload_id_marker = NULL;
    int rc;
    xml_node *root = parse_root(body, len, "ListMultipartUploadsResult", &rc, err);
    if (!root)
        return rc;
    const char *enc = xml_child_text(root, "EncodingType");
    int url = enc && strcmp(enc, "url") == 0;
    size_t n = 0;
    for (const xml_node *u = xml_child(root, "Upload"); u; u = xml_next_same(u))
        n++;
    if (n) {
        objc_upload *grown = realloc(*uploads, (*count + n) * sizeof **uploads);
        if (!grown) {
            xml_free(root);
            return aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory listing uploads");
        }
        *uploads = grown;
    }
    int bad = 0;
    for (const xml_node *u = xml_child(root, "Upload"); u && !bad; u = xml_next_same(u)) {
        objc_upload *up = &(*uploads)[*count];
        memset(up, 0, sizeof *up);
        up->key = child_string(u, "Key", url, &bad);
        up->upload_id = child_string(u, "UploadId", 0, &bad);
        time_t t = s3_parse_iso8601(xml_child_text(u, "Initiated"));
        up->initiated = t == (time_t)-1 ? 0 : t;
        if (bad) {
            free(up->key);
            free(up->upload_id);
            break;
        }
        (*count)++;
    }
    if (!bad && is_true(xml_child_text(root, "IsTruncated"))) {
        const char *k = xml_child_text(root, "NextKeyMarker");
        const char *id = xml_child_text(root, "NextUploadIdMarker");
        if (!k || !*k || !id)   /* an empty marker would restart the listing from the beginning */
            bad = 1;
        else {
            *next_key_marker = url ? s3_url_decode(k) : strdup(k);
            *next_upload_id_marker = strdup(id);
            if (!*next_key_marker || !*next_upload_id_marker)
                bad = 1;
        }
    }
    xml_free(root);
    if (bad) {
        free(*next_key_marker);
        free(*next_upload_id_marker);
        *next_key_marker = *next_upload_id_marker = NULL;
        return aws_error_set(err, AWS_ERR_PARSE, "ListMultipartUploads answer has a malformed entry");
    }
    return 0;
}

int s3_xml_parse_initiate(const char *body, size_t len, char **upload_id, aws_error *err)
{
    int rc;
    xml_node *root = parse_root(body, len, "InitiateMultipartUploadResult", &rc, err);
    if (!root)
        return rc;
    const char *id = xml_child_text(root, "UploadId");
    rc = 0;
    if (!id || !*id)
        rc = aws_error_set(err, AWS_ERR_PARSE, "CreateMultipartUpload answer has no UploadId");
    else if (!(*upload_id = strdup(id)))
        rc = aws_error_set(err, AWS_ERR_NO_MEMORY, "out of memory");
    xml_free(root);
    return rc;
}

static int parse_etag_result(const char *body, size_t len, const char *root_name, char *etag, size_t cap,
                             aws_error *err)
{
    int rc;
    xml_node *root = parse_root(body, len, root_name, &rc, err);
    if (!root)
        return rc;
    const char *t = xml_child_text(root, "ETag");
    rc = 0;
    if (!t || !*t || strlen(t) >= cap)
        rc = aws_error_set(err, AWS_ERR_INTEGRITY, "S3 %s has no usable ETag", root_name);
    else
        copy_text(etag, cap, t);
    xml_free(root);
    return rc;
}

int s3_xml_parse_complete(const char *body, size_t len, char *etag, size_t etag_cap, aws_error *err)
{
    /* S3 names the root ...Result; moto (the test stack) answers ...Response: accept both. */
    int rc = parse_etag_result(body, len, "CompleteMultipartUploadResult", etag, etag_cap, err);
    if (rc == AWS_ERR_PARSE)
        rc = parse_etag_result(body, len, "CompleteMultipartUploadResponse", etag, etag_cap, err);
    return rc;
}

int s3_xml_parse_copy(const char *body, size_t len, const char *root, char *etag, size_t etag_cap,
                      aws_error *err)
{
    return parse_etag_result(body, len, root, etag, etag_cap, err);
}

int s3_xml_parse_delete_result(const char *body, size_t len, aws_error *err)
{
    int rc;
    xml_node *root = parse_root(body, len, "DeleteResult", &rc, err);
    if (!root)
        return rc;
    const xml_node *e = xml_child(root, "Error");
    rc = 0;
    if (e) {
        rc = error_from_node(e, err);
        if (err)
            snprintf(err->message, sizeof err->message, "%.120s: %.120s", xml_child_text(e, "Key") ?: "?",
                     xml_child_text(e, "Message") ?: "");
    }
    xml_free(root);
    return rc;
}

int s3_etag_is_multipart(const char *etag, size_t part_count)
{
    if (!etag)
        return 0;
    size_t n = strlen(etag);
    if (n >= 2 && etag[0] == '"' && etag[n - 1] == '"') {
        etag++;
        n -= 2;
    }
    size_t hex = 0;
    while (hex < n && isxdigit((unsigned char)etag[hex]))
        hex++;
    if (hex != 32 || hex >= n || etag[hex] != '-')
        return 0;
    char digits[24];
    size_t dlen = n - hex - 1;
    if (dlen == 0 || dlen >= sizeof digits)
        return 0;
    memcpy(digits, etag + hex + 1, dlen);
    digits[dlen] = '\0';
    uint64_t parts;
    return s3_parse_u64(digits, &parts) == 0 && parts == part_count;
}

void s3_xml_build_complete(const objc_part *parts, size_t count, xml_buf *out)
{
    char num[16];
    xml_buf_append(out, "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
    for (size_t i = 0; i < count; i++) {
        xml_buf_append(out, "<Part>");
        if (parts[i].checksum_crc32c[0])
            xml_buf_element(out, "ChecksumCRC32C", parts[i].checksum_crc32c);
        xml_buf_element(out, "ETag", parts[i].etag);
        snprintf(num, sizeof num, "%d", parts[i].part_number);
        xml_buf_element(out, "PartNumber", num);
        xml_buf_append(out, "</Part>");
    }
    xml_buf_append(out, "</CompleteMultipartUpload>");
}

void s3_xml_build_delete(const char *const *keys, size_t count, xml_buf *out)
{
    xml_buf_append(out, "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Quiet>true</Quiet>");
    for (size_t i = 0; i < count; i++) {
        xml_buf_append(out, "<Object>");
        xml_buf_element(out, "Key", keys[i]);
        xml_buf_append(out, "</Object>");
    }
    xml_buf_append(out, "</Delete>");
}
