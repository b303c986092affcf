/* Live counters of the daemon, updated with relaxed atomics on the hot paths and read by the status
 * view (the xattr user.s3csefs.stats on the mount root, and the companion CLI). Adding a counter: add
 * the field and its name in counters.c; nothing else needs to change. */
#ifndef S3CSEFS_COUNTERS_H
#define S3CSEFS_COUNTERS_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    _Atomic uint64_t bytes_written_plain;      /* accepted from writers */
    _Atomic uint64_t bytes_uploaded;           /* request bodies sent to S3 (ciphertext for encrypted) */
    _Atomic uint64_t bytes_read_plain;         /* returned to readers */
    _Atomic uint64_t bytes_fetched;            /* response bodies received from S3 */
    _Atomic uint64_t uploads_started;
    _Atomic uint64_t uploads_completed;
    _Atomic uint64_t uploads_failed;
    _Atomic uint64_t parts_uploaded;
    _Atomic uint64_t parts_in_flight;
    _Atomic uint64_t spool_fallbacks;          /* streams that left the streaming path for the spool */
    _Atomic uint64_t spool_bytes;              /* current bytes in spool files */
    _Atomic uint64_t kms_generate_calls;
    _Atomic uint64_t kms_decrypt_calls;
    _Atomic uint64_t key_cache_hits;
    _Atomic uint64_t s3_requests;
    _Atomic uint64_t s3_retries;
    _Atomic uint64_t s3_errors;
    _Atomic uint64_t decrypt_errors;           /* corrupt objects, bad padding, tag mismatch */
    _Atomic uint64_t window_parked_bytes;      /* writes ahead of the frontier parked in an overflow spool */
    _Atomic uint64_t heap_trims;               /* free heap returned to the system after a busy spell */
    _Atomic uint64_t open_files;
} fs_counters;

/* "name value\n" lines for every counter, plus memory used/limit/peak from the caller. Returns the
 * length written (truncated to cap-1, always NUL-terminated). */
size_t fs_counters_format(const fs_counters *c, uint64_t mem_used, uint64_t mem_limit, uint64_t mem_peak,
                          char *out, size_t cap);

#endif
