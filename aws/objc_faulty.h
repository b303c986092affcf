/* Test-only extras of the fault-injecting object client (objc_new_faulty and objc_fault_rule are in
 * object_client.h). All return -1 (or 0 counts) when `faulty` is not a faulty client. */
#ifndef S3CSEFS_OBJC_FAULTY_H
#define S3CSEFS_OBJC_FAULTY_H

#include <stddef.h>
#include <stdint.h>
#include "object_client.h"

enum {
    /* Run the real call first, then report the fault: the request took effect but its answer was
     * lost (e.g. a CompleteMultipartUpload that succeeded while the connection dropped). */
    OBJC_FAULT_AFTER_EFFECT = 1 << 0,
};

/* Like objc_faulty_add_rule, with OBJC_FAULT_* flags. Returns the rule's index (>= 0) or -1. */
int objc_faulty_add_rule_ex(object_client *faulty, const objc_fault_rule *rule, unsigned flags);
/* Removes one rule; indexes of later rules stay valid (the slot is left empty). */
int objc_faulty_remove_rule(object_client *faulty, int index);

/* Truncated GET bodies: every get_range on a key containing key_substring (NULL: every key) delivers
 * at most max_bytes. With as_error, the call then fails with AWS_ERR_NETWORK like a connection reset
 * mid-body (the bytes before it are in buf, *got says how many); without, it returns the short count as
 * a success, which the contract forbids anywhere but the end of an object: a reader must notice.
 * A GET whose range holds no more than max_bytes is not affected. max_bytes = SIZE_MAX turns it off.
 * get_stream is cut the same way: max_bytes reach the sink, then AWS_ERR_NETWORK (as_error: a transfer
 * that broke mid-stream after the client's own resumption gave up) or a silent early success. */
int objc_faulty_set_truncation(object_client *faulty, const char *key_substring, size_t max_bytes, int as_error);

/* Seeded random faults for soak and fuzz runs: each call of an operation in ops_mask fails with
 * probability per_million / 1e6 with the given error, independently of the rules (rules are checked
 * first). The sequence is reproducible for a seed when calls arrive in the same order. per_million 0
 * turns it off. */
int objc_faulty_set_random(object_client *faulty, uint64_t seed, unsigned per_million, unsigned ops_mask,
                           aws_err_kind kind, int http_status, const char *code);

/* Note: objc_faulty_clear_rules also turns truncation and random faults off. */

/* Calls seen and faults injected since creation (all rules), for assertions. */
uint64_t objc_faulty_calls(object_client *faulty);
uint64_t objc_faulty_injected(object_client *faulty);

#endif
