//! SigV4/SigV2 secrets for s3s, from the configured users. s3s verifies the signatures (headers, presigned
//! URLs with expiry, aws-chunked payloads); an unknown access key is InvalidAccessKeyId, as AWS answers.

use s3s::auth::{S3Auth, SecretKey};
use s3s::{s3_error, S3Result};

use crate::state::SharedState;

pub struct Auth(pub SharedState);

#[async_trait::async_trait]
impl S3Auth for Auth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        match self.0.user(access_key) {
            Some(u) => Ok(SecretKey::from(u.secret_key.clone())),
            None => {
                Err(s3_error!(InvalidAccessKeyId, "The AWS Access Key Id you provided does not exist in our records."))
            }
        }
    }
}
