/* AWS STS calls that turn one identity into temporary credentials: AssumeRole (signed with the source
 * credentials) and AssumeRoleWithWebIdentity (unsigned; the OIDC token is the proof). Responses are XML
 * and parsed with expat (xml.h). */
#ifndef S3CSEFS_STS_H
#define S3CSEFS_STS_H

#include <stddef.h>
#include "aws_error.h"
#include "aws_session.h"
#include "credentials.h"
#include "sigv4.h"

typedef struct {
    const char *role_arn;
    const char *role_session_name;    /* NULL or "": "s3csefs-<unix time>" */
    const char *external_id;          /* optional */
    int duration_seconds;             /* 0: the service default (1 hour) */
} sts_assume_role_params;

/* AssumeRole at the session's STS endpoint and region, signed with `source`. out->source is
 * "assume-role". Errors carry the STS code (e.g. SignatureDoesNotMatch, AccessDenied). */
int sts_assume_role(aws_session *session, const sigv4_credentials *source, const sts_assume_role_params *params,
                    aws_credentials *out, aws_error *err);

/* AssumeRoleWithWebIdentity; `token` is the OIDC token text. out->source is "web-identity". */
int sts_assume_role_with_web_identity(aws_session *session, const char *role_arn, const char *session_name,
                                      const char *token, aws_credentials *out, aws_error *err);

/* GetCallerIdentity signed with `creds` (NULL: the session's provider): the ARN of the identity, into
 * arn_out. Lets a tool or a mount check that resolved credentials really work. */
int sts_get_caller_identity(aws_session *session, const sigv4_credentials *creds, char *arn_out, size_t cap,
                            aws_error *err);

/* Parses an AssumeRole / AssumeRoleWithWebIdentity response body (the <Credentials> element anywhere
 * under the root) into out. AWS_ERR_PARSE when a field is missing or malformed. */
int sts_parse_credentials(const char *xml, size_t len, aws_credentials *out, aws_error *err);

#endif
