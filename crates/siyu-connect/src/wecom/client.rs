//! WeCom's API, called correctly (WECOM.md "Access token", "Frequency limits"):
//!
//! - one access token per secret, kept by the [`WecomHost`] where every node shares it
//!   (gettoken is rate limited like any API and gives the same token until it expires,
//!   so it is fetched only when none is kept);
//! - 40014/42001: the token is dropped, fetched once more and the call made once more;
//! - 40001/40013/48002 (and the other configuration errors): no retry, the connector
//!   is unhealthy until an admin fixes it;
//! - -1 (busy): retried with backoff, three times;
//! - 45009: the host pauses the API (1 s doubling to 60 s, then an hour) and the call
//!   ends with [`WecomError::RateLimited`]; 45033: a short wait and a retry.
//!
//! Before every call the host is asked for a permit ([`WecomHost::permit`]), which is
//! where calls are counted against WeCom's limits per corp and API; after it the host
//! hears how it went ([`WecomHost::observe`]) to keep the connector's health.

use std::future::Future;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::{WecomError, errcode, is_configuration_error};

/// A kept access token.
#[derive(Clone, PartialEq, Eq)]
pub struct KeptToken {
    pub token: String,
    /// Names this token when dropping it (another node may have kept a newer one).
    pub fetched_at: i64,
}

impl std::fmt::Debug for KeptToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeptToken")
            .field("fetched_at", &self.fetched_at)
            .finish_non_exhaustive()
    }
}

/// How a call went, for the host's records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    Ok,
    /// WeCom answered an errcode (or could not be reached: `None`).
    Failed {
        errcode: Option<i64>,
        message: String,
        configuration: bool,
    },
}

/// What the client needs from where it runs: the shared token, the call budget and
/// the records. The runtime implements it over the store; tests over memory.
pub trait WecomHost: Send + Sync {
    /// Held while a call is in flight (the host's concurrency limit); dropped after.
    type Permit: Send;
    /// The kept token, if any and not expired.
    fn token(&self) -> impl Future<Output = Result<Option<KeptToken>, WecomError>> + Send;
    /// Keeps a fetched token for `expires_in` seconds.
    fn keep_token(
        &self,
        token: &str,
        expires_in: i64,
    ) -> impl Future<Output = Result<KeptToken, WecomError>> + Send;
    /// Forgets a token WeCom called invalid.
    fn drop_token(&self, token: &KeptToken) -> impl Future<Output = Result<(), WecomError>> + Send;
    /// Waits until a call of `api` may be made, or says it may not now
    /// ([`WecomError::RateLimited`] while the API is paused); the permit is held while
    /// the call is in flight.
    fn permit(&self, api: &str) -> impl Future<Output = Result<Self::Permit, WecomError>> + Send;
    /// WeCom refused a call of `api` as too frequent: pause it; answers until when.
    fn rate_limited(&self, api: &str) -> impl Future<Output = Result<i64, WecomError>> + Send;
    /// How a call went.
    fn observe(&self, api: &str, observed: Observed) -> impl Future<Output = ()> + Send;
}

/// A WeCom corp's app, as the connector is configured.
#[derive(Clone)]
pub struct WecomApp {
    /// Without a trailing `/`; `/cgi-bin/…` is appended.
    pub api_base_url: String,
    pub corp_id: String,
    pub secret: String,
}

impl std::fmt::Debug for WecomApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WecomApp")
            .field("api_base_url", &self.api_base_url)
            .field("corp_id", &self.corp_id)
            .finish_non_exhaustive()
    }
}

/// Retries of -1 (busy) before giving up on a call.
const BUSY_RETRIES: u32 = 3;

/// The HTTP client WeCom is called with: TLS by rustls, short timeouts (WeCom answers
/// in well under a second; a hung call would hold a job's lease).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(20))
        .pool_max_idle_per_host(8)
        .build()
        .expect("the HTTP client builds")
}

/// How long a media upload may take (the other calls: 20 s).
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(120);

/// The largest image [`WecomClient::fetch_image`] takes (WeCom's QR images are tens of
/// kilobytes).
pub const IMAGE_MAX_BYTES: usize = 2 * 1024 * 1024;

/// An image fetched from WeCom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedImage {
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// Calls WeCom for one connector.
pub struct WecomClient<H> {
    http: reqwest::Client,
    app: WecomApp,
    host: H,
}

enum Method<'a> {
    Get(&'a [(&'a str, &'a str)]),
    Post(&'a Value),
    /// A file as `multipart/form-data` (WeCom's media uploads), with query parameters.
    Upload {
        query: &'a [(&'a str, &'a str)],
        file: &'a Upload<'a>,
    },
}

/// A file to upload to WeCom.
#[derive(Debug, Clone, Copy)]
pub struct Upload<'a> {
    pub file_name: &'a str,
    pub content_type: &'a str,
    pub bytes: &'a [u8],
}

impl<H: WecomHost> WecomClient<H> {
    pub fn new(http: reqwest::Client, app: WecomApp, host: H) -> Self {
        Self { http, app, host }
    }

    pub fn host(&self) -> &H {
        &self.host
    }

    /// GET `/cgi-bin/{api}` with the token and `query`; the answer's fields.
    pub async fn get<T: DeserializeOwned>(
        &self,
        api: &str,
        query: &[(&str, &str)],
    ) -> Result<T, WecomError> {
        let value = self.call(api, Method::Get(query)).await?;
        decode(api, value)
    }

    /// POST `/cgi-bin/{api}` with the token and a JSON body; the answer's fields.
    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        api: &str,
        body: &B,
    ) -> Result<T, WecomError> {
        let body = serde_json::to_value(body).map_err(|e| WecomError::Host(e.to_string()))?;
        let value = self.call(api, Method::Post(&body)).await?;
        decode(api, value)
    }

    /// POST `/cgi-bin/{api}` with the token, `query` and a file as `multipart/form-data`
    /// (its part named `media`, as WeCom's media uploads take it); the answer's fields.
    pub async fn upload<T: DeserializeOwned>(
        &self,
        api: &str,
        query: &[(&str, &str)],
        file: &Upload<'_>,
    ) -> Result<T, WecomError> {
        let value = self.call(api, Method::Upload { query, file }).await?;
        decode(api, value)
    }

    /// Fetches an image WeCom gave by URL (a contact way's `qr_code`): its bytes and
    /// content type. Not a `/cgi-bin` call: no token, no rate limit. Only `http(s)`
    /// URLs and images of at most [`IMAGE_MAX_BYTES`] are taken.
    pub async fn fetch_image(&self, url: &str) -> Result<FetchedImage, WecomError> {
        let parsed = reqwest::Url::parse(url).map_err(|e| {
            WecomError::Transient(format!("WeCom gave an image URL that does not parse: {e}"))
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(WecomError::Transient(format!(
                "WeCom gave an image URL that is not http(s): {}",
                parsed.scheme()
            )));
        }
        let answer = self.http.get(parsed).send().await.map_err(|e| {
            WecomError::Transient(format!("fetching an image: {}", without_url(&e)))
        })?;
        if !answer.status().is_success() {
            return Err(WecomError::Transient(format!(
                "fetching an image: WeCom answered {}",
                answer.status()
            )));
        }
        let content_type = answer
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/octet-stream")
            .to_owned();
        if answer
            .content_length()
            .is_some_and(|n| n > IMAGE_MAX_BYTES as u64)
        {
            return Err(WecomError::Transient(
                "fetching an image: it is too large".into(),
            ));
        }
        let bytes = answer.bytes().await.map_err(|e| {
            WecomError::Transient(format!("fetching an image: {}", without_url(&e)))
        })?;
        if bytes.len() > IMAGE_MAX_BYTES {
            return Err(WecomError::Transient(
                "fetching an image: it is too large".into(),
            ));
        }
        Ok(FetchedImage {
            content_type,
            bytes: bytes.to_vec(),
        })
    }

    async fn call(&self, api: &str, method: Method<'_>) -> Result<Value, WecomError> {
        let mut refetched = false;
        let mut busy = 0;
        loop {
            let token = match self.host.token().await? {
                Some(token) => token,
                None => self.fetch_token().await?,
            };
            let permit = self.host.permit(api).await?;
            let answer = self.send(api, &method, Some(&token.token)).await;
            drop(permit);
            let (code, message, value) = match answer {
                Ok(answered) => answered,
                Err(e) => {
                    self.host
                        .observe(api, failed(None, &e.to_string(), false))
                        .await;
                    return Err(e);
                }
            };
            match code {
                0 => {
                    self.host.observe(api, Observed::Ok).await;
                    return Ok(value);
                }
                errcode::INVALID_TOKEN | errcode::EXPIRED_TOKEN if !refetched => {
                    tracing::info!(
                        api,
                        code,
                        "WeCom turned the access token down: fetching another"
                    );
                    self.host.drop_token(&token).await?;
                    refetched = true;
                }
                errcode::BUSY if busy < BUSY_RETRIES => {
                    busy += 1;
                    tokio::time::sleep(Duration::from_millis(200 << busy)).await;
                }
                errcode::CONCURRENCY_LIMIT if busy < BUSY_RETRIES => {
                    // the host hears it to lower its concurrency
                    self.host
                        .observe(api, failed(Some(code), &message, false))
                        .await;
                    busy += 1;
                    tokio::time::sleep(Duration::from_millis(100 << busy)).await;
                }
                _ => return Err(self.refused(api, code, message).await),
            }
        }
    }

    /// What a refusal means, recorded with the host.
    async fn refused(&self, api: &str, code: i64, message: String) -> WecomError {
        let configuration = is_configuration_error(code);
        self.host
            .observe(api, failed(Some(code), &message, configuration))
            .await;
        match code {
            errcode::FREQUENCY_LIMIT => match self.host.rate_limited(api).await {
                Ok(until_ms) => WecomError::RateLimited {
                    api: api.to_owned(),
                    until_ms,
                },
                Err(e) => e,
            },
            errcode::BUSY | errcode::CONCURRENCY_LIMIT => {
                WecomError::Transient(format!("{api}: {code} {message}"))
            }
            _ if configuration => WecomError::Configuration {
                errcode: code,
                message,
            },
            _ => WecomError::Call {
                api: api.to_owned(),
                errcode: code,
                message,
            },
        }
    }

    async fn fetch_token(&self) -> Result<KeptToken, WecomError> {
        const API: &str = "gettoken";
        let mut busy = 0;
        loop {
            let permit = self.host.permit(API).await?;
            let query = [
                ("corpid", self.app.corp_id.as_str()),
                ("corpsecret", self.app.secret.as_str()),
            ];
            let answer = self.send(API, &Method::Get(&query), None).await;
            drop(permit);
            // an unreachable WeCom is recorded as any call's is: the connector's health
            // shows why nothing works before the first token
            let (code, message, value) = match answer {
                Ok(answered) => answered,
                Err(e) => {
                    self.host
                        .observe(API, failed(None, &e.to_string(), false))
                        .await;
                    return Err(e);
                }
            };
            match code {
                0 => {
                    let token = value
                        .get("access_token")
                        .and_then(Value::as_str)
                        .filter(|t| !t.is_empty())
                        .ok_or_else(|| {
                            WecomError::Transient("gettoken answered no access_token".into())
                        })?;
                    let expires_in = value
                        .get("expires_in")
                        .and_then(Value::as_i64)
                        .unwrap_or(7200);
                    return self.host.keep_token(token, expires_in).await;
                }
                errcode::BUSY if busy < BUSY_RETRIES => {
                    busy += 1;
                    tokio::time::sleep(Duration::from_millis(200 << busy)).await;
                }
                _ => return Err(self.refused(API, code, message).await),
            }
        }
    }

    /// One HTTP exchange: WeCom's errcode and errmsg, and the whole answer.
    async fn send(
        &self,
        api: &str,
        method: &Method<'_>,
        token: Option<&str>,
    ) -> Result<(i64, String, Value), WecomError> {
        let url = format!("{}/cgi-bin/{api}", self.app.api_base_url);
        let mut query: Vec<(&str, &str)> = Vec::new();
        if let Some(token) = token {
            query.push(("access_token", token));
        }
        let request = match method {
            Method::Get(params) => {
                query.extend(params.iter().copied());
                self.http.get(&url).query(&query)
            }
            Method::Post(body) => self.http.post(&url).query(&query).json(body),
            Method::Upload {
                query: params,
                file,
            } => {
                query.extend(params.iter().copied());
                let part = reqwest::multipart::Part::bytes(file.bytes.to_vec())
                    .file_name(file.file_name.to_owned())
                    .mime_str(file.content_type)
                    .map_err(|e| WecomError::Host(format!("{api}: {e}")))?;
                let form = reqwest::multipart::Form::new().part("media", part);
                // a file of up to 20 MB takes longer than a call's 20 s on a slow uplink
                self.http
                    .post(&url)
                    .query(&query)
                    .multipart(form)
                    .timeout(UPLOAD_TIMEOUT)
            }
        };
        let response = request
            .send()
            .await
            .map_err(|e| WecomError::Transient(format!("{api}: {}", without_url(&e))))?;
        let status = response.status();
        if !status.is_success() {
            return Err(WecomError::Transient(format!("{api}: HTTP {status}")));
        }
        let value: Value = response
            .json()
            .await
            .map_err(|e| WecomError::Transient(format!("{api}: not JSON: {}", without_url(&e))))?;
        // every WeCom answer carries errcode (0 when it went through): one without it is
        // not WeCom's (a proxy's page, a captive portal)
        let Some(code) = value.get("errcode").and_then(Value::as_i64) else {
            return Err(WecomError::Transient(format!(
                "{api}: an answer without errcode"
            )));
        };
        let message = value
            .get("errmsg")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        Ok((code, message, value))
    }
}

fn failed(errcode: Option<i64>, message: &str, configuration: bool) -> Observed {
    Observed::Failed {
        errcode,
        message: message.to_owned(),
        configuration,
    }
}

/// A reqwest error without its URL: the URL carries the access token or the secret.
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), "(WeCom)");
    }
    text
}

fn decode<T: DeserializeOwned>(api: &str, value: Value) -> Result<T, WecomError> {
    serde_json::from_value(value)
        .map_err(|e| WecomError::Transient(format!("{api}: an answer of an unexpected shape: {e}")))
}
