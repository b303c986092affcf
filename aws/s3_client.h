/* Extras of the real S3 object client (objc_new_s3 in object_client.h): counters for the status view
 * and the copy tuning that lets a test force the UploadPartCopy path on a small object. Functions return
 * -1 when `c` is not an S3 client. Set them before the client is shared between threads. */
#ifndef S3CSEFS_S3_CLIENT_H
#define S3CSEFS_S3_CLIENT_H

#include <stdint.h>
#include "http.h"
#include "object_client.h"

#define S3_DEFAULT_MULTIPART_COPY_THRESHOLD ((uint64_t)5 << 30)   /* CopyObject's own limit: 5 GiB */
#define S3_DEFAULT_COPY_PART_SIZE ((uint64_t)1 << 30)

/* Sources larger than `threshold` bytes are copied with UploadPartCopy in parts of at least
 * `part_size` (grown so that at most 10,000 parts are needed; at most 5 GiB each). 0 keeps a value. */
int objc_s3_set_copy_tuning(object_client *c, uint64_t threshold, uint64_t part_size);
/* Counters every request of this client updates (pointers copied; targets must outlive the client). */
int objc_s3_set_counters(object_client *c, const http_counters *counters);
/* 1 if request bodies are signed with their SHA-256 (plain-http endpoints), 0 for UNSIGNED-PAYLOAD. */
int objc_s3_signs_payload(const object_client *c);

#endif
