//! Lists as streams that follow the `Link: <…>; rel="next"` header from page to page.

use std::collections::VecDeque;

use futures_util::stream::{self, Stream, StreamExt};
use jobs_domain::event::Event;
use jobs_domain::{JobId, ListQuery, Order};
use reqwest::header::LINK;
use reqwest::{Method, Response, Url};
use serde::de::DeserializeOwned;

use crate::error::Result;
use crate::event::HistoryEvent;
use crate::transport::{read_json, Call};
use crate::{Client, Job};

/// One page of a list, and where the next one is.
#[derive(Clone, Debug, PartialEq)]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// The next page (the target of `Link` `rel="next"`), or `None` on the last page.
    pub next: Option<Url>,
}

/// The query string of a list query (its project goes in a header instead).
pub(crate) fn query_pairs(query: &ListQuery) -> Vec<(&'static str, String)> {
    let mut pairs = Vec::new();
    if let Some(statuses) = &query.statuses {
        let names: Vec<&str> = statuses.iter().map(|s| s.as_str()).collect();
        pairs.push(("status", names.join(",")));
    }
    if let Some(job_type) = query.job_type {
        pairs.push(("job_type", job_type.as_str().to_owned()));
    }
    if let Some(folder) = &query.source_id {
        pairs.push(("folder_id", folder.clone()));
    }
    if let Some(agent) = &query.agent_id {
        pairs.push(("agent_id", agent.clone()));
    }
    if let Some(before) = query.before {
        pairs.push(("before", before.to_string()));
    }
    if let Some(after) = query.after {
        pairs.push(("after", after.to_string()));
    }
    pairs.push(("limit", query.limit.get().to_string()));
    let order = match query.order {
        Order::Asc => "asc",
        Order::Desc => "desc",
    };
    pairs.push(("order", order.to_owned()));
    pairs
}

/// The target of the `rel="next"` link of an answer, resolved against its URL.
pub(crate) fn next_link(response: &Response) -> Option<Url> {
    response
        .headers()
        .get_all(LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(next_target)
        .and_then(|target| response.url().join(&target).ok())
}

/// The `rel="next"` target of one `Link` header value (RFC 8288), if it has one.
pub(crate) fn next_target(header: &str) -> Option<String> {
    let mut rest = header;
    while let Some(start) = rest.find('<') {
        let end = start + rest[start..].find('>')?;
        let target = &rest[start + 1..end];
        let params_end = rest[end..].find('<').map_or(rest.len(), |i| end + i);
        let params = &rest[end + 1..params_end];
        let is_next = params.split(';').any(|param| {
            let Some((name, value)) = param.split_once('=') else { return false };
            name.trim().eq_ignore_ascii_case("rel")
                && value
                    .trim()
                    .trim_matches('"')
                    .split_ascii_whitespace()
                    .any(|rel| rel.eq_ignore_ascii_case("next"))
        });
        if is_next {
            return Some(target.to_owned());
        }
        rest = &rest[params_end..];
    }
    None
}

impl Client {
    /// One page of jobs (`GET /api/jobs`) matching `query`, and the link to the next.
    pub async fn list_page(&self, query: &ListQuery) -> Result<Page<Job>> {
        let mut url = self.url("/api/jobs")?;
        url.query_pairs_mut().extend_pairs(query_pairs(query));
        self.page(url, query.project_id.as_deref()).await
    }

    /// The page of jobs at `url`: the `next` of an earlier [`Page`].
    pub async fn list_page_at(&self, url: Url, project_id: Option<&str>) -> Result<Page<Job>> {
        self.page(url, project_id).await
    }

    async fn page<T: DeserializeOwned>(&self, url: Url, project: Option<&str>) -> Result<Page<T>> {
        let mut call = Call::new(self, Method::GET, url);
        if let Some(project) = project {
            call = call.header("x-project-id", project)?;
        }
        let response = self.execute(&call).await?;
        let next = next_link(&response);
        let items = read_json(response).await?;
        Ok(Page { items, next })
    }

    /// Every job matching `query`, as a stream that fetches page after page, following
    /// the `Link` header, as it is read. `query.limit` is the page size.
    ///
    /// ```no_run
    /// # async fn run(client: jobs_client::Client) -> Result<(), jobs_client::Error> {
    /// use futures_util::TryStreamExt;
    /// use jobs_domain::{ListDefaults, ListQuery, JobStatus};
    ///
    /// let mut query = ListQuery::new(ListDefaults::LIST);
    /// query.statuses = Some([JobStatus::Running].into());
    /// let running: Vec<_> = client.list(&query).try_collect().await?;
    /// # Ok(()) }
    /// ```
    pub fn list(&self, query: &ListQuery) -> impl Stream<Item = Result<Job>> + Send + 'static {
        let first = if query.statuses.as_ref().is_some_and(|s| s.is_empty()) {
            // The filters exclude every status: nothing to ask for.
            Ok(None)
        } else {
            self.url("/api/jobs").map(|mut url| {
                url.query_pairs_mut().extend_pairs(query_pairs(query));
                Some(url)
            })
        };
        self.paged(first, query.project_id.clone())
    }

    /// A job's history (`GET /api/jobs/{id}/events`), oldest first, as a stream that
    /// follows the `Link` header from page to page.
    pub fn history(&self, id: &JobId) -> impl Stream<Item = Result<Event>> + Send + 'static {
        let first = self.url(&format!("/api/jobs/{id}/events")).map(Some);
        self.paged::<HistoryEvent>(first, None).map(|item| item.and_then(Event::try_from))
    }

    fn paged<T: DeserializeOwned + Send + 'static>(
        &self,
        first: Result<Option<Url>>,
        project: Option<String>,
    ) -> impl Stream<Item = Result<T>> + Send + 'static {
        struct State<T> {
            client: Client,
            next: Result<Option<Url>>,
            buffer: VecDeque<T>,
            project: Option<String>,
        }
        let state = State { client: self.clone(), next: first, buffer: VecDeque::new(), project };
        stream::unfold(state, |mut s| async move {
            loop {
                if let Some(item) = s.buffer.pop_front() {
                    return Some((Ok(item), s));
                }
                let url = match std::mem::replace(&mut s.next, Ok(None)) {
                    Ok(Some(url)) => url,
                    Ok(None) => return None,
                    Err(err) => return Some((Err(err), s)),
                };
                match s.client.page::<T>(url, s.project.as_deref()).await {
                    Ok(page) => {
                        s.buffer.extend(page.items);
                        s.next = Ok(page.next);
                    }
                    // The stream ends after an error (`next` is now `None`).
                    Err(err) => return Some((Err(err), s)),
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jobs_domain::{JobStatus, ListDefaults};

    #[test]
    fn the_next_link_is_found_among_others_and_rel_lists() {
        let header =
            r#"</api/jobs?before=a>; rel="prev", </api/jobs?limit=2&before=job-1>; rel="next""#;
        assert_eq!(next_target(header).as_deref(), Some("/api/jobs?limit=2&before=job-1"));
        assert_eq!(next_target(r#"</x>; title="a"; rel="last next""#).as_deref(), Some("/x"));
        assert_eq!(next_target("</x>; rel=next").as_deref(), Some("/x"));
        assert_eq!(next_target(r#"</x>; rel="prev""#), None);
        assert_eq!(next_target("garbage"), None);
    }

    #[test]
    fn a_query_becomes_the_list_parameters() {
        let mut query = ListQuery::new(ListDefaults::LIST);
        query.statuses = Some([JobStatus::Running, JobStatus::Created].into());
        query.source_id = Some("f".into());
        let pairs = query_pairs(&query);
        assert_eq!(
            pairs,
            vec![
                ("status", "created,running".to_owned()),
                ("folder_id", "f".to_owned()),
                ("limit", "100".to_owned()),
                ("order", "desc".to_owned()),
            ]
        );
    }
}
