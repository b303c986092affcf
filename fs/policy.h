/* Which file names are encrypted: the encrypt= option, a ':'-separated list of shell globs matched
 * case-insensitively against the last path component ("*.bak" matches DB.BAK), or "all", or "none".
 * Temporary names of rsync and similar tools, ".<name>.<6 chars>", are judged as <name>, because a
 * rename never re-encrypts: the bytes stay as they were written under the temporary name. */
#ifndef S3CSEFS_POLICY_H
#define S3CSEFS_POLICY_H

/* 1 if a file at mount path (or bare name) `path` is to be encrypted under `spec`, else 0. */
int policy_should_encrypt(const char *spec, const char *path);
/* 0 if spec is a valid encrypt= value, -1 otherwise (empty pattern, over-long list). */
int policy_validate(const char *spec);

#endif
