/* Builds the daemon's context from the parsed options and checks at mount time everything that would
 * otherwise only fail at the first close(): credentials and the bucket (a one-key listing of the
 * prefix), the KMS key (DescribeKey: exists and enabled, resolved to its ARN) and the permission to use
 * it (one GenerateDataKey). A failure comes back as one clear sentence for the user. */
#ifndef S3CSEFS_DAEMON_SETUP_H
#define S3CSEFS_DAEMON_SETUP_H

#include <stddef.h>
#include "fs_context.h"

/* ctx->options must be filled. Creates memory budget, session, object and KMS clients, runs the checks.
 * 0, or -1 with the reason in err (everything created so far is released). */
int daemon_setup(fs_context *ctx, char *err, size_t err_cap);
/* Starts what needs threads (after any fork): caches, open-file table, upload workers. 0 or -1. */
int daemon_start_workers(fs_context *ctx, char *err, size_t err_cap);
/* Finishes open uploads and releases everything daemon_setup/daemon_start_workers made. */
void daemon_teardown(fs_context *ctx);

#endif
