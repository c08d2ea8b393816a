//! The Swagger UI under `/docs`, with the security headers a browser page needs: a
//! Content-Security-Policy that allows only this origin's scripts (the vendored Swagger UI
//! has no inline script), `X-Content-Type-Options: nosniff`, and no framing.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};
use utoipa_swagger_ui::{Config, SwaggerUi};

/// The policy of the docs pages. Scripts and the document's fetches come from this origin
/// only; Swagger UI sets inline styles and uses `data:` images in its CSS; nothing may
/// frame the page (clickjacking), embed plugins or change the base URL.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; \
frame-ancestors 'none'";

/// Registers `/docs` (a redirect) and the Swagger UI under `/docs/`, which reads
/// `/openapi.json`.
pub fn routes(cfg: &mut web::ServiceConfig, openapi: utoipa::openapi::OpenApi) {
    cfg.service(web::resource("/docs").route(web::get().to(|| async {
        HttpResponse::PermanentRedirect().insert_header(("Location", "/docs/")).finish()
    })))
    .service(
        SwaggerUi::new("/docs/{_:.*}")
            .url("/openapi.json", openapi)
            // Swagger UI would otherwise send the document's URL to validator.swagger.io.
            .config(Config::default().validator_url("none")),
    );
}

/// Whether the path is one of the docs pages.
fn is_docs(path: &str) -> bool {
    path == "/docs" || path.starts_with("/docs/")
}

/// Middleware: adds the security headers to every response under `/docs`, errors included.
pub async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let docs = is_docs(req.path());
    let mut res = next.call(req).await?;
    if docs {
        let headers = res.headers_mut();
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
        headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_docs_paths_get_the_headers() {
        assert!(is_docs("/docs"));
        assert!(is_docs("/docs/"));
        assert!(is_docs("/docs/swagger-ui.css"));
        assert!(!is_docs("/docsx"));
        assert!(!is_docs("/openapi.json"));
        assert!(!is_docs("/api/jobs"));
    }
}
