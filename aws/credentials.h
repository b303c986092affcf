/* The AWS credentials chain, first hit wins: environment, shared credentials/config files (profile,
 * role_arn+source_profile via STS AssumeRole), web identity (STS AssumeRoleWithWebIdentity), ECS
 * container endpoint, EC2 IMDSv2. Temporary credentials are refreshed before they expire; readers get
 * a consistent snapshot while uploads are in flight. */
#ifndef S3CSEFS_CREDENTIALS_H
#define S3CSEFS_CREDENTIALS_H

#include <time.h>
#include "aws_error.h"
#include "sigv4.h"

typedef struct aws_session aws_session;
typedef struct credentials_provider credentials_provider;

/* A snapshot of credentials: strings owned by the snapshot. */
typedef struct {
    char access_key_id[128];
    char secret_access_key[128];
    char session_token[4096];
    time_t expiration;            /* 0 = never */
    char source[32];              /* "env", "profile", "assume-role", "web-identity", "ecs", "imds" */
} aws_credentials;

credentials_provider *credentials_provider_new(aws_session *session);
void credentials_provider_free(credentials_provider *prov);
/* Returns current credentials, resolving or refreshing (5 minutes before expiry) as needed. Wipe the
 * snapshot with secure_wipe() after use. */
int credentials_get(credentials_provider *prov, aws_credentials *out, aws_error *err);
void credentials_as_sigv4(const aws_credentials *c, sigv4_credentials *out);

#endif
