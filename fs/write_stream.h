/* One object being uploaded from a sequential byte stream: plaintext -> CBC encryptor (for encrypted
 * names) -> part buffers -> the UploadPart worker pool, while the writer keeps writing. Encryption goes
 * straight from the caller's buffer into the part buffer. The object is created only by finish():
 * one PutObject when everything fit into the first part (with x-amz-unencrypted-content-length), else
 * the multipart upload that was started lazily when the first part filled up is completed. Any failure
 * aborts the multipart upload, so no partial object ever becomes visible.
 *
 * Part sizes start at options.part_size and double every 1,000 parts (parts of write_min_part_size()
 * or more reach 5 TiB within 10,000 parts); every part but the last is a multiple of 16 bytes. Part buffers are reserved from the
 * memory budget before they are allocated, which back-pressures a writer onto slow uploads.
 *
 * Not thread-safe for writers: the owner (write_file) serialises append/finish calls. */
#ifndef S3CSEFS_WRITE_STREAM_H
#define S3CSEFS_WRITE_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include "fs_context.h"
#include "part_uploader.h"

typedef struct write_stream write_stream;

/* Starts a stream to object `key`. encrypt: a fresh KMS data key (GenerateDataKey, context from the
 * write profile) and a fresh random IV. extra_metadata (may be NULL) is added to the object's user
 * metadata (attributes). 0, or -EIO (KMS failure, logged) / -ENOMEM. */
int write_stream_new(fs_context *ctx, part_uploader *uploader, const char *key, int encrypt,
                     const kv_list *extra_metadata, write_stream **out);
/* Appends plaintext. May block for memory or to create the multipart upload. 0, -EIO (this stream has
 * failed: a part upload or the create failed), -EFBIG (more than 10,000 parts or 5 TiB stored), -ENOMEM,
 * -ENOSPC. All or nothing: on any error other than -EIO none of the bytes were taken (the stream is as
 * before the call and can still be finished); when that cannot be guaranteed the stream fails (-EIO). */
int write_stream_append(write_stream *s, const uint8_t *data, size_t len);
/* Appends len zero bytes (holes that are still holes at close). Appends in pieces: on error, some of
 * the zeros may have been taken (write_stream_length says how many). */
int write_stream_append_zeros(write_stream *s, uint64_t len);
/* Cut the encrypted stream back to `size` bytes when everything from `size` on is still in memory (not
 * uploaded, not staged); returns 0, or -ENOTSUP when it cannot (the caller falls back as before). */
int write_stream_truncate(write_stream *s, uint64_t size);
/* Plaintext bytes appended so far. */
uint64_t write_stream_length(const write_stream *s);
/* 1 once a part has been handed to the uploader (the multipart upload exists). */
int write_stream_has_uploaded(const write_stream *s);
/* Waits until every part handed over so far is in S3. The current partial part (and, encrypted, the
 * last 0..15 bytes held by the cipher) stay in memory until finish. 0 or -EIO. */
int write_stream_wait_parts(write_stream *s);
/* Pads, uploads the rest, waits, completes (or PUTs). 0 only when the object is durably stored; on
 * failure -EIO, the multipart upload is aborted. The stream can only be freed afterwards. */
int write_stream_finish(write_stream *s);
/* Gives up on the stream: waits for parts in flight, aborts the multipart upload and logs one line with
 * the first failure (or `why` when nothing failed inside the stream). Returns -EIO. */
int write_stream_fail(write_stream *s, const char *why);
/* Before anything was uploaded: hands every appended plaintext byte, in order, to sink (decrypting the
 * buffered ciphertext). Used when a file leaves the streaming path. 0, -EIO (parts already uploaded),
 * or sink's error. */
int write_stream_recover(write_stream *s, int (*sink)(void *arg, uint64_t offset, const uint8_t *data,
                                                      size_t len),
                         void *arg);
/* Frees; a stream not finished is aborted (its multipart upload, if any, is aborted). */
void write_stream_free(write_stream *s);

/* The part size for 1-based part number n: part_size doubled every 1,000 parts, at most 5 GiB. */
uint64_t write_part_size(uint64_t first_part_size, int part_number);
/* Stored bytes a stream starting with this part size can hold: the sum of write_part_size over 10,000
 * parts, at most S3's 5 TiB object limit. */
uint64_t write_stream_capacity(uint64_t first_part_size);
/* The smallest first part size (a multiple of 16, at least S3's 5 MiB) whose capacity is 5 TiB. */
uint64_t write_min_part_size(void);

#endif
