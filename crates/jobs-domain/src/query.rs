//! List queries (the list parameters of the API): parsed and validated once, from the raw query-string pairs.

use std::collections::BTreeSet;

use crate::fields::Label;
use crate::id::JobId;
use crate::status::{JobStatus, JobType};
use crate::ValidationError;

/// A page size, 1 to 1000.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit(u16);

impl Limit {
    /// The largest page.
    pub const MAX: u16 = 1000;

    /// A page size, refused outside 1..=1000.
    pub fn new(value: i64) -> Result<Self, ValidationError> {
        if (1..=i64::from(Self::MAX)).contains(&value) {
            Ok(Limit(value as u16))
        } else {
            Err(ValidationError::new("limit", "must be between 1 and 1000"))
        }
    }

    /// The size.
    pub fn get(self) -> u16 {
        self.0
    }
}

/// The order of a list, by (`created_at`, `id`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// Oldest first.
    Asc,
    /// Newest first.
    Desc,
}

/// What a list endpoint assumes when a parameter is absent.
#[derive(Clone, Copy, Debug)]
pub struct ListDefaults {
    /// Page size.
    pub limit: Limit,
    /// Order.
    pub order: Order,
    /// Whether only active jobs are listed.
    pub active: bool,
}

impl ListDefaults {
    /// `GET /api/jobs`: 100 newest first.
    pub const LIST: ListDefaults =
        ListDefaults { limit: Limit(100), order: Order::Desc, active: false };
    /// `GET /api/jobs/active`: 50 active jobs, oldest first.
    pub const ACTIVE: ListDefaults =
        ListDefaults { limit: Limit(50), order: Order::Asc, active: true };
}

/// A validated list query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListQuery {
    /// Only these statuses (`None`: any). May be empty, when the filters exclude everything.
    pub statuses: Option<BTreeSet<JobStatus>>,
    /// Only this job type.
    pub job_type: Option<JobType>,
    /// Only jobs of this source (folder).
    pub source_id: Option<String>,
    /// Only jobs of this agent.
    pub agent_id: Option<String>,
    /// Only jobs of this project (from `X-Project-Id`).
    pub project_id: Option<String>,
    /// Only jobs older than this one.
    pub before: Option<JobId>,
    /// Only jobs newer than this one.
    pub after: Option<JobId>,
    /// Page size.
    pub limit: Limit,
    /// Order of the page.
    pub order: Order,
}

/// Why a list query is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// A parameter is malformed (422).
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// A cursor is not a job id, or the range is empty (400).
    #[error("{0}")]
    InvalidCursor(String),
}

fn parse_bool(name: &str, value: &str) -> Result<bool, ValidationError> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ValidationError::new(name, "must be true or false")),
    }
}

/// Parameters that may be given at most once.
const SINGLE: [&str; 11] = [
    "active",
    "job_type",
    "source_id",
    "folder_id",
    "agent_id",
    "before",
    "after",
    "limit",
    "order",
    "order_by",
    "ascending",
];

impl ListQuery {
    /// A query with the defaults and no filters.
    pub fn new(defaults: ListDefaults) -> Self {
        ListQuery {
            statuses: defaults.active.then(|| JobStatus::ACTIVE.into_iter().collect()),
            job_type: None,
            source_id: None,
            agent_id: None,
            project_id: None,
            before: None,
            after: None,
            limit: defaults.limit,
            order: defaults.order,
        }
    }

    /// Parses decoded query-string pairs. Unknown parameters are ignored; known ones are
    /// checked strictly. Malformed values are [`QueryError::Invalid`]; a malformed cursor,
    /// or the same cursor as both bounds, is [`QueryError::InvalidCursor`] (reported after
    /// every other parameter has been checked).
    pub fn from_pairs<K, V>(
        pairs: impl IntoIterator<Item = (K, V)>,
        defaults: ListDefaults,
    ) -> Result<Self, QueryError>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut query = ListQuery::new(defaults);
        let mut statuses: Option<BTreeSet<JobStatus>> = None;
        let mut active = defaults.active;
        let mut order = None;
        let mut ascending = None;
        let mut folder_id: Option<String> = None;
        let mut seen = BTreeSet::new();
        let mut cursor_error = None;

        for (key, value) in pairs {
            let (key, value) = (key.as_ref(), value.as_ref());
            if SINGLE.contains(&key) && !seen.insert(key.to_owned()) {
                return Err(ValidationError::new(key, "may be given only once").into());
            }
            match key {
                "status" => {
                    let set = statuses.get_or_insert_with(BTreeSet::new);
                    for part in value.split(',') {
                        let status = part
                            .trim()
                            .parse::<JobStatus>()
                            .map_err(|e| ValidationError::new("status", e.to_string()))?;
                        set.insert(status);
                    }
                }
                "active" => active = parse_bool(key, value)?,
                "job_type" => {
                    query.job_type =
                        Some(value.parse().map_err(|e: crate::status::UnknownJobType| {
                            ValidationError::new(key, e.to_string())
                        })?)
                }
                "source_id" => query.source_id = Some(Label::parse(key, value)?.into_string()),
                "folder_id" => folder_id = Some(Label::parse(key, value)?.into_string()),
                "agent_id" => query.agent_id = Some(Label::parse(key, value)?.into_string()),
                "before" | "after" => match JobId::parse(value) {
                    Ok(id) if key == "before" => query.before = Some(id),
                    Ok(id) => query.after = Some(id),
                    Err(e) => {
                        cursor_error.get_or_insert_with(|| format!("{key}: {e}"));
                    }
                },
                "limit" => {
                    let n = value.trim().parse::<i64>().map_err(|_| {
                        ValidationError::new(key, "must be an integer between 1 and 1000")
                    })?;
                    query.limit = Limit::new(n)?;
                }
                "order" => {
                    order = Some(match value {
                        "asc" => Order::Asc,
                        "desc" => Order::Desc,
                        _ => return Err(ValidationError::new(key, "must be asc or desc").into()),
                    })
                }
                "order_by" if value != "created_at" => {
                    return Err(
                        ValidationError::new(key, "the only accepted value is created_at").into()
                    );
                }
                "ascending" => ascending = Some(parse_bool(key, value)?),
                _ => {}
            }
        }

        match (&query.source_id, folder_id) {
            (Some(source), Some(folder)) if *source != folder => {
                return Err(ValidationError::new(
                    "folder_id",
                    "source_id and folder_id name different folders",
                )
                .into())
            }
            (None, Some(folder)) => query.source_id = Some(folder),
            _ => {}
        }

        // `ascending` is deprecated but, when given, it wins over `order`.
        query.order = match (ascending, order) {
            (Some(true), _) => Order::Asc,
            (Some(false), _) => Order::Desc,
            (None, Some(order)) => order,
            (None, None) => defaults.order,
        };

        query.statuses = match (statuses, active) {
            (Some(set), true) => Some(set.into_iter().filter(|s| s.is_active()).collect()),
            (Some(set), false) => Some(set),
            (None, true) => Some(JobStatus::ACTIVE.into_iter().collect()),
            (None, false) => None,
        };

        if let Some(message) = cursor_error {
            return Err(QueryError::InvalidCursor(message));
        }
        if query.before.is_some() && query.before == query.after {
            return Err(QueryError::InvalidCursor("before must be newer than after".into()));
        }
        Ok(query)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<ListQuery, QueryError> {
        ListQuery::from_pairs(pairs.iter().copied(), ListDefaults::LIST)
    }

    #[test]
    fn defaults_are_100_newest_first() {
        let q = parse(&[]).unwrap();
        assert_eq!(q.limit.get(), 100);
        assert_eq!(q.order, Order::Desc);
        assert_eq!(q.statuses, None);
        let active =
            ListQuery::from_pairs(Vec::<(&str, &str)>::new(), ListDefaults::ACTIVE).unwrap();
        assert_eq!(active.limit.get(), 50);
        assert_eq!(active.order, Order::Asc);
        assert_eq!(active.statuses.map(|s| s.len()), Some(3));
    }

    #[test]
    fn statuses_may_be_repeated_and_comma_separated() {
        let q = parse(&[("status", "running,failed"), ("status", "created")]).unwrap();
        let expected: BTreeSet<_> =
            [JobStatus::Running, JobStatus::Failed, JobStatus::Created].into();
        assert_eq!(q.statuses, Some(expected));
        assert!(parse(&[("status", "running,")]).is_err());
        assert!(parse(&[("status", "done")]).is_err());
    }

    #[test]
    fn active_narrows_the_statuses() {
        let q = parse(&[("status", "running,failed"), ("active", "true")]).unwrap();
        assert_eq!(q.statuses, Some([JobStatus::Running].into()));
        let q = parse(&[("status", "failed"), ("active", "true")]).unwrap();
        assert_eq!(q.statuses, Some(BTreeSet::new()));
    }

    #[test]
    fn ascending_overrides_order() {
        assert_eq!(parse(&[("order", "desc"), ("ascending", "true")]).unwrap().order, Order::Asc);
        assert_eq!(parse(&[("order", "asc"), ("ascending", "false")]).unwrap().order, Order::Desc);
        assert_eq!(parse(&[("order", "asc")]).unwrap().order, Order::Asc);
    }

    #[test]
    fn limits_outside_one_to_a_thousand_are_refused() {
        for bad in ["0", "1001", "-1", "abc", "", "1e3", "99999999999999999999"] {
            assert!(matches!(parse(&[("limit", bad)]), Err(QueryError::Invalid(_))), "{bad}");
        }
        assert_eq!(parse(&[("limit", "1000")]).unwrap().limit.get(), 1000);
        assert_eq!(parse(&[("limit", "1")]).unwrap().limit.get(), 1);
    }

    #[test]
    fn folder_and_source_must_agree() {
        assert_eq!(parse(&[("folder_id", "f")]).unwrap().source_id.as_deref(), Some("f"));
        assert!(parse(&[("folder_id", "f"), ("source_id", "f")]).is_ok());
        assert!(parse(&[("folder_id", "f"), ("source_id", "g")]).is_err());
    }

    #[test]
    fn malformed_cursors_are_cursor_errors_and_other_errors_win() {
        assert!(matches!(parse(&[("before", "nope")]), Err(QueryError::InvalidCursor(_))));
        assert!(matches!(
            parse(&[("before", "nope"), ("limit", "0")]),
            Err(QueryError::Invalid(_))
        ));
        let id = JobId::generate().to_string();
        assert!(matches!(
            parse(&[("before", &id), ("after", &id)]),
            Err(QueryError::InvalidCursor(_))
        ));
    }

    #[test]
    fn other_bad_values_are_refused() {
        assert!(parse(&[("order", "up")]).is_err());
        assert!(parse(&[("order_by", "updated_at")]).is_err());
        assert!(parse(&[("active", "yes")]).is_err());
        assert!(parse(&[("job_type", "task")]).is_err());
        assert!(parse(&[("limit", "1"), ("limit", "2")]).is_err());
        assert!(parse(&[("agent_id", "")]).is_err());
        assert!(parse(&[("whatever", "x")]).is_ok());
    }

    proptest! {
        #[test]
        fn parsing_never_panics(pairs in proptest::collection::vec(("[a-z_]{0,10}", "\\PC{0,20}"), 0..8)) {
            let _ = ListQuery::from_pairs(pairs, ListDefaults::LIST);
        }
    }
}
