//! Sending one request: the token, the timeouts, retries of what is safe to repeat, and the
//! mapping of error answers into [`Error`].

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, ETAG};
use reqwest::{Method, Response, StatusCode, Url};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::retry::retry_after;
use crate::{Client, Job};

/// One request, as the client's methods describe it.
#[derive(Debug)]
pub(crate) struct Call {
    pub method: Method,
    pub url: Url,
    pub body: Option<Value>,
    pub headers: HeaderMap,
    /// Safe to repeat: retried on connection errors, 429 and 503.
    pub safe: bool,
    /// The time limit of the whole exchange; `None` for streams.
    pub timeout: Option<Duration>,
}

impl Call {
    pub fn new(client: &Client, method: Method, url: Url) -> Call {
        let safe = method == Method::GET || method == Method::DELETE;
        Call {
            method,
            url,
            body: None,
            headers: HeaderMap::new(),
            safe,
            timeout: Some(client.inner.timeout),
        }
    }

    pub fn body(mut self, body: Value) -> Call {
        self.body = Some(body);
        self
    }

    pub fn safe(mut self, safe: bool) -> Call {
        self.safe = safe;
        self
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Result<Call> {
        let value = HeaderValue::from_str(value)
            .map_err(|_| Error::Config(format!("{name}: not a valid header value")))?;
        self.headers.insert(name, value);
        Ok(self)
    }

    /// Holds the request for up to `wait` (`Prefer: wait=N`): the time limit grows by it.
    pub fn prefer_wait(mut self, wait: Duration) -> Result<Call> {
        let seconds = wait.as_secs().max(1);
        self.timeout = self.timeout.map(|t| t + Duration::from_secs(seconds));
        self.header("prefer", &format!("wait={seconds}"))
    }

    pub fn streaming(mut self) -> Call {
        self.timeout = None;
        self
    }
}

/// Whether a transport error is a failed or broken connection (or a timeout), which a
/// request that is safe to repeat may be retried after.
fn is_connection_error(err: &reqwest::Error) -> bool {
    err.is_connect() || err.is_timeout() || err.is_request()
}

impl Client {
    /// The URL of an API path (`/api/jobs`).
    pub(crate) fn url(&self, path: &str) -> Result<Url> {
        let base = self.inner.base.as_str().trim_end_matches('/');
        Url::parse(&format!("{base}{path}")).map_err(|e| Error::Config(format!("{path}: {e}")))
    }

    /// Sends a call, retrying it when it is safe to; `Ok` for 2xx and 304 answers.
    pub(crate) async fn execute(&self, call: &Call) -> Result<Response> {
        let policy = &self.inner.retry;
        let mut attempt = 0;
        loop {
            let error = match self.send_once(call).await {
                Ok(response)
                    if response.status().is_success()
                        || response.status() == StatusCode::NOT_MODIFIED =>
                {
                    return Ok(response);
                }
                Ok(response) => {
                    let status = response.status();
                    let error = error_of(response).await;
                    let retryable = matches!(
                        status,
                        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
                    );
                    if call.safe && retryable {
                        let wait = error.api().and_then(|api| api.retry_after);
                        if let Some(delay) = policy.delay(attempt, wait) {
                            tokio::time::sleep(delay).await;
                            attempt += 1;
                            continue;
                        }
                    }
                    error
                }
                Err(err) if call.safe && is_connection_error(&err) => {
                    if let Some(delay) = policy.delay(attempt, None) {
                        tokio::time::sleep(delay).await;
                        attempt += 1;
                        continue;
                    }
                    Error::Transport(err)
                }
                Err(err) => Error::Transport(err),
            };
            return Err(error);
        }
    }

    async fn send_once(&self, call: &Call) -> reqwest::Result<Response> {
        let mut request = self
            .inner
            .http
            .request(call.method.clone(), call.url.clone())
            .headers(self.inner.headers.clone())
            .headers(call.headers.clone());
        if let Some(token) = &self.inner.token {
            request = request.bearer_auth(token);
        }
        if let Some(timeout) = call.timeout {
            request = request.timeout(timeout);
        }
        if let Some(body) = &call.body {
            request = request.json(body);
        }
        request.send().await
    }

    /// Sends a call whose answer is one job, and reads it with its `ETag`.
    pub(crate) async fn job_call(&self, call: &Call) -> Result<Job> {
        let response = self.execute(call).await?;
        read_job(response).await
    }
}

/// The job of a single-job answer, with the answer's `ETag`.
pub(crate) async fn read_job(response: Response) -> Result<Job> {
    let etag = response.headers().get(ETAG).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let mut job: Job = read_json(response).await?;
    job.etag = etag;
    Ok(job)
}

/// The JSON body of a successful answer.
pub(crate) async fn read_json<T: serde::de::DeserializeOwned>(response: Response) -> Result<T> {
    let text = response.text().await.map_err(Error::Transport)?;
    serde_json::from_str(&text).map_err(|e| Error::Decode(format!("{e} in {}", cut(&text))))
}

/// The error of an answer with an error status.
pub(crate) async fn error_of(response: Response) -> Error {
    let status = response.status().as_u16();
    let wait = retry_after(response.headers());
    let request_id =
        response.headers().get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
    match response.text().await {
        Ok(text) => Error::from_answer(status, &text, wait, request_id),
        Err(err) => Error::Transport(err),
    }
}

fn cut(text: &str) -> String {
    text.chars().take(200).collect()
}
