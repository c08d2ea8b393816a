//! The Jobs API server: builds the application from a [`Config`] value, so that `main`
//! and the black-box tests start exactly the same thing.

pub mod config;
mod docs;
pub mod sweeper;
pub mod webhooks;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::{from_fn, Compress};
use actix_web::{web, App, HttpServer};
use anyhow::{bail, Context};
use jobs_http::auth::{mint_hs256, Claims};
use jobs_http::ratelimit::{Rate, UserRateLimiter};
use jobs_http::{ApiDoc, AppState, Authenticator, KeySource, Metrics};
use jobs_store::{DatabaseUrl, JobStore, PoolOptions};
use rand::RngCore;
use utoipa::OpenApi;

pub use config::{Cli, Command, Config};
use sweeper::SweeperSettings;
use webhooks::{Dispatcher, Signer, WebhookSettings};

/// A server that is bound and connected to its database, ready to run.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    workers: Option<usize>,
    webhooks: WebhookSettings,
    sweeper: SweeperSettings,
    /// When no secret was configured: the secret generated for this run and a token for it.
    pub generated_token: Option<String>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application").field("listener", &self.listener).finish()
    }
}

/// Opens the store named by the configuration (applying migrations).
pub fn open_store(config: &Config) -> anyhow::Result<JobStore> {
    let url = DatabaseUrl::parse(&config.database_url)?;
    let options = PoolOptions { max_size: config.pool_size.max(1), ..PoolOptions::default() };
    JobStore::open(&url, &options)
}

/// All scopes, for the start-up token.
const ALL_SCOPES: &str = "jobs:read jobs:write jobs:admin";

/// Builds the token verifier; without any key configured, generates a secret for this run
/// and returns a ready-to-use token (all scopes, one day) beside it.
fn authenticator(config: &Config) -> anyhow::Result<(Authenticator, Option<String>)> {
    let issuer = config.jwt_issuer.as_deref();
    let audience = config.jwt_audience.as_deref();
    let built = match (&config.jwt_secret, &config.jwt_public_key) {
        (Some(_), Some(_)) => bail!("set JOBS_JWT_SECRET or JOBS_JWT_PUBLIC_KEY, not both"),
        (Some(secret), None) => {
            (Authenticator::new(KeySource::Secret(secret.as_bytes()), issuer, audience), None)
        }
        (None, Some(path)) => {
            let pem = std::fs::read(path)
                .with_context(|| format!("reading JOBS_JWT_PUBLIC_KEY {}", path.display()))?;
            (Authenticator::new(KeySource::PublicKeyPem(&pem), issuer, audience), None)
        }
        (None, None) => {
            let mut bytes = [0u8; 32];
            rand::rng().fill_bytes(&mut bytes);
            let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            let token = mint(
                secret.as_bytes(),
                config,
                "dev-user",
                None,
                ALL_SCOPES,
                chrono::TimeDelta::days(1),
            )?;
            (
                Authenticator::new(KeySource::Secret(secret.as_bytes()), issuer, audience),
                Some(token),
            )
        }
    };
    let (auth, token) = built;
    Ok((auth.map_err(anyhow::Error::msg)?, token))
}

/// Webhook delivery settings from the configuration.
fn webhook_settings(config: &Config) -> anyhow::Result<WebhookSettings> {
    anyhow::ensure!(config.webhook_timeout_ms > 0, "JOBS_WEBHOOK_TIMEOUT_MS must be at least 1");
    anyhow::ensure!(
        config.webhook_max_attempts > 0,
        "JOBS_WEBHOOK_MAX_ATTEMPTS must be at least 1"
    );
    Ok(WebhookSettings {
        signer: config.webhook_secret.as_deref().map(Signer::from_secret).transpose()?,
        allow_private: config.webhook_allow_private,
        timeout: Duration::from_millis(config.webhook_timeout_ms),
        max_attempts: config.webhook_max_attempts,
        retry_base: Duration::from_millis(config.webhook_retry_base_ms),
    })
}

/// The per-user limiter, when `JOBS_RATE_LIMIT` is set; a malformed value is an error.
fn rate_limiter(config: &Config) -> anyhow::Result<Option<Arc<UserRateLimiter>>> {
    let Some(text) = config.rate_limit.as_deref() else {
        return Ok(None);
    };
    let rate: Rate = text.parse().map_err(|e| anyhow::anyhow!("JOBS_RATE_LIMIT: {e}"))?;
    log::info!("rate limit: {rate} per user (organization and subject), per process");
    Ok(Some(Arc::new(UserRateLimiter::new(rate))))
}

/// Mints an HS256 token with the configured issuer and audience.
pub fn mint(
    secret: &[u8],
    config: &Config,
    sub: &str,
    org: Option<&str>,
    scope: &str,
    ttl: chrono::TimeDelta,
) -> anyhow::Result<String> {
    let now = chrono::Utc::now();
    let claims = Claims {
        sub: sub.to_owned(),
        exp: (now + ttl).timestamp(),
        org: org.map(str::to_owned),
        scope: Some(scope.to_owned()),
        iat: Some(now.timestamp()),
        nbf: None,
        iss: config.jwt_issuer.clone(),
        aud: config.jwt_audience.clone().map(serde_json::Value::String),
    };
    mint_hs256(secret, &claims).map_err(anyhow::Error::msg)
}

impl Application {
    /// Opens the database, binds the address and prepares the server. Nothing is served
    /// until [`Application::run`].
    pub fn build(config: &Config) -> anyhow::Result<Application> {
        let (auth, generated_token) = authenticator(config)?;
        let webhooks = webhook_settings(config)?;
        let rate_limit = rate_limiter(config)?;
        let metrics = Arc::new(Metrics::new().context("registering metrics")?);
        let store = open_store(config)?.with_observer(metrics.clone());
        let listener =
            TcpListener::bind(&config.bind).with_context(|| format!("binding {}", config.bind))?;
        Ok(Application {
            listener,
            state: AppState {
                store,
                auth,
                max_body_bytes: config.max_body_bytes,
                metrics,
                webhook_allow_private: config.webhook_allow_private,
                rate_limit,
            },
            workers: config.workers,
            webhooks,
            sweeper: SweeperSettings {
                retention: config.retention_days.map(|d| chrono::TimeDelta::days(i64::from(d))),
            },
            generated_token,
        })
    }

    /// The port the server listens on (useful after binding port 0).
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Starts serving, with the expiry sweeper and the webhook dispatcher beside the
    /// server; must be called inside an actix (tokio) runtime. The server stops gracefully
    /// on SIGTERM or SIGINT, finishing in-flight requests.
    pub fn run(self) -> anyhow::Result<Server> {
        let dispatcher =
            Dispatcher::new(self.state.store.clone(), self.webhooks, self.state.metrics.clone())?;
        actix_web::rt::spawn(dispatcher.run());
        actix_web::rt::spawn(sweeper::run(
            self.state.store.clone(),
            self.state.metrics.clone(),
            self.sweeper,
        ));
        let state = web::Data::new(self.state);
        let openapi = ApiDoc::openapi();
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .wrap(jobs_http::error_fallback())
                .wrap(Compress::default())
                .wrap(from_fn(jobs_http::metrics::observe))
                .wrap(from_fn(docs::security_headers))
                .configure(jobs_http::job_routes)
                .configure(jobs_http::health_routes)
                .configure(|cfg| docs::routes(cfg, openapi.clone()))
                .default_service(web::to(jobs_http::not_found))
        })
        .shutdown_timeout(30);
        if let Some(workers) = self.workers {
            server = server.workers(workers.max(1));
        }
        Ok(server.listen(self.listener)?.run())
    }
}

/// Runs the command line; returns when the command is done (for `serve`, at shutdown).
pub fn run_cli(cli: Cli) -> anyhow::Result<()> {
    let config = cli.config;
    env_logger::Builder::new().parse_filters(&config.log).format_timestamp_millis().init();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Migrate => {
            open_store(&config)?;
            log::info!("migrations applied to {}", redact(&config.database_url));
            Ok(())
        }
        Command::Token(args) => {
            let Some(secret) = &config.jwt_secret else {
                bail!("jobs-server token needs JOBS_JWT_SECRET (or --jwt-secret) to sign with");
            };
            let token = mint(
                secret.as_bytes(),
                &config,
                &args.sub,
                args.org.as_deref(),
                &args.scope,
                args.ttl,
            )?;
            println!("{token}");
            Ok(())
        }
        Command::Serve => {
            let app = Application::build(&config)?;
            let port = app.port();
            let host = config.bind.rsplit_once(':').map(|(h, _)| h).unwrap_or("127.0.0.1");
            if let Some(token) = &app.generated_token {
                println!(
                    "No JOBS_JWT_SECRET or JOBS_JWT_PUBLIC_KEY set: generated a secret for this run.\n\
                     Use this token (scopes: {ALL_SCOPES}; valid one day):\n\n  export TOKEN={token}\n"
                );
            }
            log::info!("database {}", redact(&config.database_url));
            log::info!("listening on http://{host}:{port} (Swagger UI at /docs/)");
            actix_web::rt::System::new().block_on(async move { anyhow::Ok(app.run()?.await?) })?;
            log::info!("stopped");
            Ok(())
        }
    }
}

/// The URL without its password, for logs.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}
