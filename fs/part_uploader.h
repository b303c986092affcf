/* The daemon's pool of UploadPart workers (upload_concurrency threads shared by every open file). A
 * write stream hands over a filled part buffer and is called back when S3 has it; the stream owns the
 * buffer again in the callback (to free it and return its memory to the budget). Parts of many files
 * interleave in one FIFO queue, so one large file cannot starve the others for longer than a part. */
#ifndef S3CSEFS_PART_UPLOADER_H
#define S3CSEFS_PART_UPLOADER_H

#include <stddef.h>
#include <stdint.h>
#include "object_client.h"
#include "counters.h"

typedef struct part_uploader part_uploader;

/* Called on a worker thread once the part is stored (status 0, *part filled) or failed (status -1,
 * *err says why). body is the buffer given to submit. */
typedef void (*part_done_fn)(void *arg, int part_number, uint8_t *body, int status, const objc_part *part,
                             const aws_error *err);

/* counters may be NULL. NULL on failure (threads or memory). */
part_uploader *part_uploader_new(object_client *objects, fs_counters *counters, int workers);
/* Finishes every queued part, then stops the workers. */
void part_uploader_free(part_uploader *u);
/* Queues one UploadPart. key and upload_id must stay valid until the callback. When *cancelled (may be
 * NULL) is set by the time a worker picks the part up, the part is not sent and fails at once (the
 * stream has already failed: no point in waiting for more timeouts). 0 or -ENOMEM. */
int part_uploader_submit(part_uploader *u, const char *key, const char *upload_id, int part_number,
                         uint8_t *body, size_t len, part_done_fn done, void *arg, const _Atomic int *cancelled);

/* Remembers a multipart upload whose abort failed (S3 unreachable), so that it can be retried later
 * instead of leaving billed parts behind. */
void part_uploader_defer_abort(part_uploader *u, const char *key, const char *upload_id);
/* Retries the deferred aborts once each; returns how many are still left (logged). Blocks for the
 * S3 calls: for unmount; a writer uses part_uploader_request_abort_retry. */
int part_uploader_retry_aborts(part_uploader *u);
/* Returns at once; the next free worker retries the deferred aborts (before its next part). */
void part_uploader_request_abort_retry(part_uploader *u);

/* Parts submitted and not yet called back (queued or uploading), over all streams. */
int part_uploader_pending(part_uploader *u);

#endif
