//! From a creation body to a [`NewJob`]: each field parsed into its domain type, then the
//! callback target's address check, which may look its host up.

use jobs_domain::{BoundedMetadata, CallbackUrl, Label, NewJob, TimeoutSeconds, ValidationError};

use crate::dto::CreateJobRequest;
use crate::AppState;

/// The job a creation body asks for, or the first field that is wrong (422).
pub async fn new_job(body: CreateJobRequest, state: &AppState) -> Result<NewJob, ValidationError> {
    let callback_url = body.callback_url.map(CallbackUrl::parse).transpose()?;
    let new = NewJob::default()
        .with_agent_id(Label::parse_opt("agent_id", body.agent_id)?)
        .with_source_id(Label::parse_opt("source_id", body.source_id)?)
        .with_timeout_seconds(body.timeout_seconds.map(TimeoutSeconds::new).transpose()?)
        .with_metadata(BoundedMetadata::new(
            body.metadata.unwrap_or_default(),
            state.max_metadata_bytes,
        )?)
        .with_job_type(body.job_type.unwrap_or_default())
        .with_background(body.background.unwrap_or(false));
    // Last, as it may wait for a name lookup (on a resolver thread, 2 s at most).
    if let Some(url) = &callback_url {
        check_target(url, state).await?;
    }
    Ok(new.with_callback_url(callback_url))
}

/// Unless private targets are allowed, refuses a host that is or resolves to a loopback,
/// private, link-local or unspecified address. A host that does not resolve now is accepted:
/// delivery checks it again, with the same resolver.
async fn check_target(url: &CallbackUrl, state: &AppState) -> Result<(), ValidationError> {
    let refused = match url.host() {
        Some(host) => !state.webhook_allow_private && state.resolver.refuses(&host).await,
        None => false,
    };
    if refused {
        return Err(ValidationError::new(
            "callback_url",
            "must not target a loopback, private, link-local or unspecified address",
        ));
    }
    Ok(())
}
