/* A test-only object_client that keeps nothing: every upload succeeds at once and every object is
 * absent. The daemon's -o backend=null uses it to measure its own CPU and memory cost per GiB written
 * with the network and the server taken out of the figure. */
#ifndef S3CSEFS_OBJC_NULL_H
#define S3CSEFS_OBJC_NULL_H

#include "object_client.h"

object_client *objc_new_null(void);

#endif
