//! A direct route to the hottest resource, `/api/jobs/{job_id}` (and `/v1/jobs/{job_id}`),
//! taken before actix's router.
//!
//! The router matches a path with a parameter by a regular expression (`regex-lite`, whose
//! engine was 10% of a GET's CPU). This middleware, the innermost of the app, recognizes
//! `{prefix}/jobs/{job_id}` by splitting the path, and for GET, PATCH and DELETE (the
//! methods the resource serves) calls the same handlers the router would, with the same
//! path parameter and the same route label for the metrics. Everything else (another
//! method, another path) goes on to the router unchanged, which keeps answering 404 and
//! 405 as before.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use actix_web::body::BoxBody;
use actix_web::dev::{Service, ServiceFactory, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::Method;
use actix_web::{Error, Route};
use futures_util::future::{Either, LocalBoxFuture};

use crate::metrics::RoutePattern;
use crate::routes::{job_id_pattern, job_id_routes, NOT_JOB_IDS, PREFIXES};

type RouteService = <Route as ServiceFactory<ServiceRequest>>::Service;

/// The middleware: wrap it first, so that it runs inside every other middleware.
#[derive(Clone, Copy, Debug, Default)]
pub struct DirectJobRoute;

/// One prefix's `{prefix}/jobs/`, and its route label carried as the resource's app data
/// would be.
struct Prefix {
    path: String,
    data: Rc<actix_web::dev::Extensions>,
}

/// The middleware's service, one per worker.
pub struct DirectJobRouteService<S> {
    next: S,
    prefixes: Vec<Prefix>,
    routes: Vec<(Method, RouteService)>,
}

impl<S> Transform<S, ServiceRequest> for DirectJobRoute
where
    S: Service<ServiceRequest, Response = ServiceResponse<BoxBody>, Error = Error> + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = Error;
    type Transform = DirectJobRouteService<S>;
    type InitError = ();
    type Future = LocalBoxFuture<'static, Result<Self::Transform, ()>>;

    fn new_transform(&self, next: S) -> Self::Future {
        let routes: Vec<_> = job_id_routes()
            .into_iter()
            .map(|(method, route)| (method, route.new_service(())))
            .collect();
        Box::pin(async move {
            let mut services = Vec::with_capacity(routes.len());
            for (method, service) in routes {
                services.push((method, service.await?));
            }
            let prefixes = PREFIXES
                .iter()
                .map(|prefix| {
                    let path = format!("{prefix}/jobs/");
                    let mut data = actix_web::dev::Extensions::new();
                    data.insert(RoutePattern(job_id_pattern(prefix).into()));
                    Prefix { path, data: Rc::new(data) }
                })
                .collect();
            Ok(DirectJobRouteService { next, prefixes, routes: services })
        })
    }
}

/// The job id of a path `{prefix}{job_id}`, as the router's `[^/]+` would capture it,
/// unless it is one of the fixed paths beside the ids (registered before `{job_id}`).
fn job_id<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    let id = path.strip_prefix(prefix)?;
    (!id.is_empty() && !id.contains('/') && !NOT_JOB_IDS.contains(&id)).then_some(id)
}

impl<S> Service<ServiceRequest> for DirectJobRouteService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<BoxBody>, Error = Error>,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = Error;
    type Future =
        Either<S::Future, Pin<Box<dyn Future<Output = Result<ServiceResponse<BoxBody>, Error>>>>>;

    actix_web::dev::forward_ready!(next);

    fn call(&self, mut req: ServiceRequest) -> Self::Future {
        let Some((_, route)) = self.routes.iter().find(|(method, _)| method == req.method()) else {
            return Either::Left(self.next.call(req));
        };
        // The path as the router sees it (percent-encoding already normalized).
        let found = self.prefixes.iter().find_map(|prefix| {
            let id = job_id(req.match_info().unprocessed(), &prefix.path)?;
            Some((id.to_owned(), prefix))
        });
        let Some((id, prefix)) = found else { return Either::Left(self.next.call(req)) };
        // As the router would, but without marking the matched resource: `match_pattern()`
        // is `None` here, and the metrics take the route label from `RoutePattern`.
        req.match_info_mut().add_static("job_id", id);
        req.add_data_container(Rc::clone(&prefix.data));
        Either::Right(route.call(req))
    }
}

#[cfg(test)]
mod tests {
    use super::job_id;

    #[test]
    fn only_one_nonempty_segment_after_the_prefix_is_a_job_id() {
        assert_eq!(job_id("/api/jobs/job-1", "/api/jobs/"), Some("job-1"));
        assert_eq!(job_id("/api/jobs/", "/api/jobs/"), None);
        assert_eq!(job_id("/api/jobs/job-1/", "/api/jobs/"), None);
        assert_eq!(job_id("/api/jobs/job-1/cancel", "/api/jobs/"), None);
        assert_eq!(job_id("/api/jobsjob-1", "/api/jobs/"), None);
        assert_eq!(job_id("/v1/jobs/x", "/api/jobs/"), None);
        assert_eq!(job_id("/api/jobs/active", "/api/jobs/"), None);
        assert_eq!(job_id("/api/jobs/claim", "/api/jobs/"), None);
    }
}
