/* Proof that an object is the result of OUR multipart upload, for a retried CompleteMultipartUpload
 * that finds the upload gone (the first attempt completed it, its answer was lost). The object's
 * identity is recomputed from what we sent, never from its shape alone: S3's multipart ETag is
 * MD5(concatenated binary part MD5s)-N and its composite checksum is CRC32C(concatenated part
 * CRC32Cs)-N, both computable from the part list without touching the data. Pure functions. */
#ifndef S3CSEFS_S3_MPU_PROOF_H
#define S3CSEFS_S3_MPU_PROOF_H

#include <stddef.h>
#include "object_client.h"

/* "<32 hex>-N" (no quotes) that S3 gives an object completed from these parts. Returns 0, or -1 when
 * a part ETag is not a plain MD5 (e.g. SSE-KMS buckets) or out is too small. */
int s3_expected_multipart_etag(const objc_part *parts, size_t count, char *out, size_t cap);

/* "<base64 crc>-N", S3's composite x-amz-checksum-crc32c of such an object. -1 when a part has no
 * CRC32C or out is too small. */
int s3_expected_composite_crc32c(const objc_part *parts, size_t count, char *out, size_t cap);

/* 1 when two ETags are equal ignoring the surrounding quotes and hex case. */
int s3_etag_equal(const char *a, const char *b);

#endif
