//! Bearer JWT authentication, scopes and tenancy.

use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::http::{header, Method};
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use jobs_domain::{Owner, Visibility};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::AppState;

/// The scope that lets a token read jobs.
pub const SCOPE_READ: &str = "jobs:read";
/// The scope that lets a token create, change and delete jobs.
pub const SCOPE_WRITE: &str = "jobs:write";
/// The scope that extends a token's reach to every user of its organization.
pub const SCOPE_ADMIN: &str = "jobs:admin";
/// The scope of workers: with read, every job of the organization is visible; with write,
/// they may claim, heartbeat and update any of them (not create for others, cancel or delete).
pub const SCOPE_WORK: &str = "jobs:work";
/// The organization of tokens that name none.
pub const DEFAULT_ORG: &str = "default";
/// How far in the future an `iat` may be before the token is refused (clock skew).
const IAT_SKEW_SECONDS: i64 = 5;

/// The claims this service reads.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    /// The user.
    pub sub: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// The organization (default `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    /// Space-separated scopes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Issued at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// Not before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Audience.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<serde_json::Value>,
}

/// How tokens are verified: one key, one pinned algorithm, optional issuer and audience.
#[derive(Clone)]
pub struct Authenticator {
    key: DecodingKey,
    validation: Validation,
    verified: std::sync::Arc<crate::token_cache::TokenCache>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator").field("algorithms", &self.validation.algorithms).finish()
    }
}

/// The key material the server was configured with.
#[derive(Debug)]
pub enum KeySource<'a> {
    /// An HS256 shared secret.
    Secret(&'a [u8]),
    /// A PEM public key (RSA for RS256, EC P-256 for ES256).
    PublicKeyPem(&'a [u8]),
}

impl Authenticator {
    /// A verifier for the configured key; the algorithm follows from it and is pinned.
    pub fn new(
        source: KeySource<'_>,
        issuer: Option<&str>,
        audience: Option<&str>,
    ) -> Result<Authenticator, String> {
        let (key, algorithm) = match source {
            KeySource::Secret(secret) => {
                if secret.is_empty() {
                    return Err("the JWT secret is empty".into());
                }
                let key = DecodingKey::from_secret(secret)
                    .map_err(|e| format!("the JWT secret is not usable: {e}"))?;
                (key, Algorithm::HS256)
            }
            KeySource::PublicKeyPem(pem) => match DecodingKey::from_rsa_pem(pem) {
                Ok(key) => (key, Algorithm::RS256),
                Err(_) => match DecodingKey::from_ec_pem(pem) {
                    Ok(key) => (key, Algorithm::ES256),
                    Err(e) => return Err(format!("the public key is neither RSA nor EC PEM: {e}")),
                },
            },
        };
        let mut validation = Validation::new(algorithm);
        validation.leeway = 0;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        required.extend(issuer.map(|_| "iss"));
        required.extend(audience.map(|_| "aud"));
        validation.set_required_spec_claims(&required);
        match issuer {
            Some(iss) => validation.set_issuer(&[iss]),
            None => validation.iss = None,
        }
        match audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        Ok(Authenticator { key, validation, verified: Default::default() })
    }

    /// Verifies a token and returns its claims. A token that verified lately is taken from
    /// a cache while it has not expired (see [`crate::token_cache`]).
    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        if let Some(claims) = self.verified.get(token, jsonwebtoken::get_current_timestamp()) {
            return Ok(claims);
        }
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|e| ApiError::unauthorized(format!("Invalid token: {}", describe(&e))))?;
        let claims = data.claims;
        let unusable = |s: &str| s.is_empty() || s.chars().any(char::is_control);
        if unusable(&claims.sub) || claims.org.as_deref().is_some_and(unusable) {
            return Err(ApiError::unauthorized("Invalid token: unusable sub or org"));
        }
        if let Some(iat) = claims.iat {
            if iat > chrono::Utc::now().timestamp() + IAT_SKEW_SECONDS {
                return Err(ApiError::unauthorized("Invalid token: issued in the future"));
            }
        }
        // Read again: at or after the moment the checks above were made.
        self.verified.insert(token, &claims, jsonwebtoken::get_current_timestamp());
        Ok(claims)
    }
}

fn describe(err: &jsonwebtoken::errors::Error) -> &'static str {
    use jsonwebtoken::errors::ErrorKind;
    match err.kind() {
        ErrorKind::ExpiredSignature => "expired",
        ErrorKind::ImmatureSignature => "not valid yet",
        ErrorKind::InvalidSignature => "bad signature",
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => "algorithm not accepted",
        ErrorKind::InvalidIssuer => "wrong issuer",
        ErrorKind::InvalidAudience => "wrong audience",
        ErrorKind::MissingRequiredClaim(_) => "missing a required claim",
        _ => "malformed",
    }
}

/// Mints an HS256 token (for `jobs-server token` and the start-up token).
pub fn mint_hs256(secret: &[u8], claims: &Claims) -> Result<String, String> {
    let key = EncodingKey::from_secret(secret).map_err(|e| e.to_string())?;
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &key).map_err(|e| e.to_string())
}

/// The authenticated caller of one request, with its reach already decided.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The token's subject.
    pub subject: String,
    /// The token's organization.
    pub org_id: String,
    /// Whether the token has `jobs:admin`.
    pub admin: bool,
    /// The user an admin acts for (`user_id` header naming someone else).
    pub acting_as: Option<String>,
    /// Whether the token has `jobs:work`.
    pub worker: bool,
}

impl Caller {
    /// The jobs this caller can see, claim and update: a worker's reach is its organization.
    pub fn visibility(&self) -> Visibility {
        match (&self.acting_as, self.worker) {
            (None, true) => Visibility::organization(&self.org_id),
            _ => self.owner_visibility(),
        }
    }

    /// The jobs this caller may cancel and delete: its own, or (admin) its organization's.
    pub fn owner_visibility(&self) -> Visibility {
        match (&self.acting_as, self.admin) {
            (Some(user), _) => Visibility::user(&self.org_id, user),
            (None, true) => Visibility::organization(&self.org_id),
            (None, false) => Visibility::user(&self.org_id, &self.subject),
        }
    }

    /// The owner of a job this caller creates.
    pub fn owner(&self, project_id: Option<String>) -> Owner {
        let user = self.acting_as.clone().unwrap_or_else(|| self.subject.clone());
        Owner::new(&self.org_id, user, project_id)
    }

    fn from_request_sync(req: &HttpRequest) -> Result<Caller, ApiError> {
        let state = req
            .app_data::<web::Data<AppState>>()
            .ok_or_else(|| ApiError::internal("AppState missing"))?;
        let value = req
            .headers()
            .get(header::AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("Missing Authorization: Bearer token"))?;
        let value =
            value.to_str().map_err(|_| ApiError::unauthorized("Malformed Authorization header"))?;
        let token = match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => return Err(ApiError::unauthorized("Authorization must use the Bearer scheme")),
        };
        let claims = state.auth.verify(token)?;

        let scopes: Vec<&str> = claims.scope.as_deref().unwrap_or("").split_whitespace().collect();
        // Only GET routes exist (actix answers HEAD with 405 before any extractor runs).
        let needed = if req.method() == Method::GET { SCOPE_READ } else { SCOPE_WRITE };
        if !scopes.contains(&needed) {
            return Err(ApiError::forbidden(format!("This token lacks the {needed} scope")));
        }
        let admin = scopes.contains(&SCOPE_ADMIN);
        let worker = scopes.contains(&SCOPE_WORK);

        let acting_as = match acting_user_header(req)? {
            None => None,
            Some(value) if value.as_bytes() == claims.sub.as_bytes() => None,
            // Anyone else (well-formed or not) needs admin first: 403 comes before 422.
            Some(_) if !admin => {
                return Err(ApiError::forbidden(
                    "Acting for another user (user_id header) needs the jobs:admin scope",
                ));
            }
            Some(value) => {
                if !crate::headers::is_header_text(value.as_bytes()) {
                    return Err(crate::headers::invalid_header("user_id"));
                }
                Some(String::from_utf8_lossy(value.as_bytes()).into_owned())
            }
        };
        req.extensions_mut().insert(crate::metrics::RequestUser(claims.sub.clone()));
        crate::events::set_actor(&claims.sub);
        let org_id = claims.org.unwrap_or_else(|| DEFAULT_ORG.to_owned());
        // After 401 and 403, before the body is read or the database is touched.
        if let Some(limiter) = &state.rate_limit {
            limiter.check(&org_id, &claims.sub).map_err(ApiError::rate_limited)?;
        }
        Ok(Caller { org_id, subject: claims.sub, admin, acting_as, worker })
    }
}

/// The `user_id` header, or its alias `user-id` (proxies such as nginx drop header names
/// with underscores). Both given with different values is 422, whoever the caller is.
fn acting_user_header(req: &HttpRequest) -> Result<Option<&header::HeaderValue>, ApiError> {
    let headers = req.headers();
    match (headers.get("user_id"), headers.get("user-id")) {
        (Some(a), Some(b)) if a != b => Err(ApiError::validation(
            "user_id and user-id headers: given with different values; send one of them",
        )
        .with_details(serde_json::json!({"field": "user-id"}))),
        (value, alias) => Ok(value.or(alias)),
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Caller, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Caller::from_request_sync(req))
    }
}
