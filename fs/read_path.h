/* Read handles: one per file opened for reading. A handle knows the object's envelope, data key and
 * exact plaintext size; reads at any offset fetch only the 16-byte blocks they need (one ranged GET),
 * and sequential reading is detected and served by one streaming GET to the end of the object, decrypted
 * as it arrives into a queue of at most a window (prefetch_min growing to prefetch_max) of unread
 * plaintext, counted against the memory budget (docs/architecture.md, the read pipeline). */
#ifndef S3CSEFS_READ_PATH_H
#define S3CSEFS_READ_PATH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
/* aws_session.h uses the type name before declaring it: declare it first (C11 allows the repeat). */
typedef struct aws_session aws_session;
#include "fs_context.h"

typedef struct read_handle read_handle;

/* Opens `path` (a mount path such as "/dir/file.bak"): HEAD, envelope (metadata or instruction file),
 * data key (key cache, else KMS), plaintext size. 0, or -ENOENT, -EISDIR, -EIO (corrupt object, logged),
 * -ENOMEM. */
int read_handle_open(fs_context *ctx, const char *path, read_handle **out);
/* Like pread: bytes read (short only at end of file), or -EIO/-ENOMEM. Safe to call from several
 * threads on one handle. Every GET names the ETag of the HEAD the handle was opened from: once the object
 * is found replaced, this and every later read of the handle is -EIO ("object replaced while open" is
 * logged once), never bytes of the new version decrypted with the old key. A replacement seen during
 * read_handle_open (nothing returned yet) is opened again transparently. */
ssize_t read_handle_read(read_handle *h, char *buf, size_t size, off_t offset);
uint64_t read_handle_size(const read_handle *h);       /* plaintext size */
void read_handle_close(read_handle *h);                /* NULL is fine; waits for in-flight fetches */

#endif
