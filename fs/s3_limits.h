/* Amazon S3's multipart and object size limits, in one place for the write path and option checks. */
#ifndef S3CSEFS_S3_LIMITS_H
#define S3CSEFS_S3_LIMITS_H

#define S3_MAX_PARTS 10000
#define S3_MIN_PART_SIZE (5ULL * 1024 * 1024)                 /* every part but the last */
#define S3_MAX_PART_SIZE (5ULL * 1024 * 1024 * 1024)
#define S3_MAX_OBJECT_SIZE (5ULL * 1024 * 1024 * 1024 * 1024) /* stored bytes, ciphertext included */

#endif
