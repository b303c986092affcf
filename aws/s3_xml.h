/* S3 request bodies and response documents, without any I/O: parsing of ListObjectsV2,
 * ListMultipartUploads, InitiateMultipartUpload, CompleteMultipartUpload, CopyObject/UploadPartCopy and
 * DeleteObjects answers (including S3's "200 OK with an <Error> body"), and building of the
 * CompleteMultipartUpload and DeleteObjects bodies. Unit tests feed these real-shaped XML. */
#ifndef S3CSEFS_S3_XML_H
#define S3CSEFS_S3_XML_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "aws_error.h"
#include "object_client.h"
#include "xml.h"

/* If the document is an <Error> (S3 may send one with status 200 for CompleteMultipartUpload and
 * copies), fills err (kind SERVICE, code, message, request id) and returns AWS_ERR_SERVICE; returns 0
 * when the root element is `expected_root`, AWS_ERR_PARSE otherwise (also for malformed XML). */
int s3_xml_check_result(const char *body, size_t len, const char *expected_root, aws_error *err);

/* ListObjectsV2 page. Keys/prefixes are URL-decoded when the answer says EncodingType=url. */
int s3_xml_parse_list_objects(const char *body, size_t len, objc_list_page *out, aws_error *err);

/* One page of ListMultipartUploads: appends to *uploads and *count (realloc'd); *next_key_marker and
 * *next_upload_id_marker are malloc'd when IsTruncated is true, else set to NULL. */
int s3_xml_parse_list_uploads(const char *body, size_t len, objc_upload **uploads, size_t *count,
                              char **next_key_marker, char **next_upload_id_marker, aws_error *err);

/* InitiateMultipartUploadResult -> malloc'd UploadId. */
int s3_xml_parse_initiate(const char *body, size_t len, char **upload_id, aws_error *err);

/* CompleteMultipartUploadResult: copies the ETag (quotes kept, as S3 sends it) into etag. */
int s3_xml_parse_complete(const char *body, size_t len, char *etag, size_t etag_cap, aws_error *err);

/* CopyObjectResult or CopyPartResult (root given): copies the ETag. */
int s3_xml_parse_copy(const char *body, size_t len, const char *root, char *etag, size_t etag_cap,
                      aws_error *err);

/* DeleteResult: returns 0 when no <Error> entry is present, else AWS_ERR_SERVICE with the first
 * failure's code, and "key: message" as the message. */
int s3_xml_parse_delete_result(const char *body, size_t len, aws_error *err);

/* Decimal digits only (no sign, space or overflow), as Content-Length and <Size> must be: 0 or -1. */
int s3_parse_u64(const char *s, uint64_t *out);

/* 1 if etag (with or without quotes) has the multipart form "<32 hex>-<part_count>". */
int s3_etag_is_multipart(const char *etag, size_t part_count);

/* Request bodies; the xml_buf must be initialised; check buf->failed afterwards. */
void s3_xml_build_complete(const objc_part *parts, size_t count, xml_buf *out);
void s3_xml_build_delete(const char *const *keys, size_t count, xml_buf *out);

/* Decodes %XX escapes and '+' (S3's EncodingType=url). Returns malloc'd text or NULL on bad input. */
char *s3_url_decode(const char *s);
/* "2026-11-29T19:55:00.000Z" -> time_t (UTC); -1 when malformed. */
time_t s3_parse_iso8601(const char *s);
/* "Sun, 29 Nov 2026 19:55:00 GMT" -> time_t; -1 when malformed. */
time_t s3_parse_http_date(const char *s);

#endif
