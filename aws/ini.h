/* Parser for the AWS shared config and credentials files (~/.aws/config, ~/.aws/credentials):
 * "[section]" headers, "key = value" lines, full-line comments (# or ;), inline comments after
 * whitespace, indented continuation lines (sub-properties, kept but never needed here). Keys are
 * matched case-insensitively, section names exactly. Later definitions override earlier ones. */
#ifndef S3CSEFS_INI_H
#define S3CSEFS_INI_H

#include <stddef.h>
#include "aws_error.h"

typedef struct ini_file ini_file;

/* Parses text. Returns NULL with err set (AWS_ERR_NO_MEMORY) only on allocation failure: malformed
 * lines are skipped, as the AWS SDKs do. */
ini_file *ini_parse(const char *text, size_t len, aws_error *err);
/* Loads and parses a file. A missing file is not an error: returns NULL with err->kind == AWS_OK.
 * An unreadable file returns NULL with AWS_ERR_CONFIG. */
ini_file *ini_load(const char *path, aws_error *err);
void ini_free(ini_file *ini);

/* 1 if a section with exactly this name exists. NULL ini is fine (no sections). */
int ini_has_section(const ini_file *ini, const char *section);
/* Value of key in section, or NULL. NULL ini is fine. */
const char *ini_get(const ini_file *ini, const char *section, const char *key);

/* The section that holds profile `profile` in a config file: "[profile NAME]", or "[default]" for the
 * default profile (a "[profile default]" section is also accepted). In a credentials file the section
 * is simply "[NAME]". Returns the section name to pass to ini_get, or NULL when the profile is absent.
 * The result points into ini. */
const char *ini_config_profile_section(const ini_file *ini, const char *profile);

#endif
