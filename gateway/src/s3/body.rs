//! S3 request bodies into staged files (through the data layer's receiver), with a failed body stream worded
//! as S3 words it.

use s3s::dto::StreamingBlob;
use s3s::{s3_error, S3Error, S3Result};
use trove_cache::Staged;

use crate::data::{self, receive::Interrupted, receive::Received};
use crate::s3::errors;

/// Streams an S3 request body into the staged work file (the data layer's receiver), sealed for server-side
/// encryption when `sealer` is given, wording a failed body stream as S3 does.
pub async fn receive_sealed(
    staged: &Staged,
    body: Option<StreamingBlob>,
    algorithms: &[String],
    limit: u64,
    sealer: Option<data::sse::Sealer>,
) -> S3Result<Received> {
    data::receive::receive_sealed(staged, body, algorithms, limit, sealer).await.map_err(|e| match e {
        Interrupted::Body(e) => body_error(e),
        Interrupted::Data(e) => errors::from_data(e),
    })
}

/// A body stream error is the client's doing (disconnect, bad aws-chunked framing or signature), unless s3s
/// tells otherwise.
fn body_error(e: s3s::StdError) -> S3Error {
    match e.downcast::<S3Error>() {
        Ok(s3) => *s3,
        Err(e) => {
            let msg = e.to_string();
            if msg.contains("Sha256Mismatch") {
                // s3s hashes single-chunk payloads against x-amz-content-sha256 as they stream.
                let mut e = S3Error::with_message(
                    s3s::S3ErrorCode::Custom("XAmzContentSHA256Mismatch".into()),
                    "The provided 'x-amz-content-sha256' header does not match what was computed.",
                );
                e.set_status_code(http::StatusCode::BAD_REQUEST);
                e
            } else if msg.contains("Signature") || msg.contains("signature") {
                s3_error!(
                    SignatureDoesNotMatch,
                    "The request signature we calculated does not match the signature you provided."
                )
            } else {
                tracing::debug!(error = %msg, "request body ended with an error");
                s3_error!(IncompleteBody, "{msg}")
            }
        }
    }
}
